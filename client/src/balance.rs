//! Spreading calls over the server's replicas. gRPC keeps one HTTP/2 connection to an address,
//! so a client connected to one address sends every call to one replica, and replicas added
//! later get nothing from it. A balanced connection instead keeps a connection to each replica
//! and picks one per call (tonic's balanced channel: the less loaded of two chosen at random).
//!
//! A background task keeps the set current. Every refresh it resolves the replicas again (a
//! fixed list, or a DNS name such as a Kubernetes headless Service, whose addresses change as
//! pods come and go) and asks each one's health (`grpc.health.v1`, the whole server). A replica
//! that does not answer, or answers NOT_SERVING (draining, or cut off from its database), is
//! ejected until it is healthy again, unless no replica is SERVING: then every one that answers
//! stays, so calls get the server's own UNAVAILABLE at once instead of waiting for a replica.
//! The task ends when the last clone of the channel is dropped.

use std::{
    collections::{BTreeMap, BTreeSet},
    time::Duration,
};

use tokio::sync::mpsc::Sender;
use tonic::transport::{Channel, Endpoint, channel::Change};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

/// Where the replicas are.
#[derive(Debug, Clone)]
pub(crate) enum Replicas {
    /// Fixed endpoint URIs (`http://host:port`).
    List(Vec<String>),
    /// A DNS name resolved again at every refresh; each address becomes an endpoint with this
    /// scheme (`http` or `https`).
    Dns {
        host: String,
        port: u16,
        scheme: &'static str,
    },
}

impl Replicas {
    /// `dns:///host:port` (gRPC's name syntax) or `dns://host:port`, with `https` when TLS is on.
    pub(crate) fn parse_dns(target: &str, tls: bool) -> Option<Self> {
        let rest = target
            .strip_prefix("dns:///")
            .or_else(|| target.strip_prefix("dns://"))?;
        let (host, port) = rest.rsplit_once(':')?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        Some(Self::Dns {
            host: host.to_owned(),
            port: port.parse().ok()?,
            scheme: if tls { "https" } else { "http" },
        })
    }

    /// The endpoint URIs now.
    async fn resolve(&self) -> Vec<String> {
        match self {
            Self::List(uris) => uris.clone(),
            Self::Dns { host, port, scheme } => {
                match tokio::net::lookup_host((host.as_str(), *port)).await {
                    Ok(addrs) => addrs
                        .map(|addr| format!("{scheme}://{addr}"))
                        .collect::<BTreeSet<_>>()
                        .into_iter()
                        .collect(),
                    Err(_) => Vec::new(),
                }
            }
        }
    }
}

/// Builds the endpoint (timeouts, TLS, user agent) for one replica's URI.
pub(crate) type EndpointFactory = Box<dyn Fn(&str) -> Option<Endpoint> + Send + Sync>;

/// A channel balanced over `replicas`, kept current every `refresh` by a background task. The
/// first round runs before this returns, so `Ok` means at least one replica answered; `Err` says
/// none did (the channel still works once one does).
pub(crate) async fn balanced_channel(
    replicas: Replicas,
    endpoint: EndpointFactory,
    refresh: Duration,
) -> (Channel, bool) {
    let (channel, changes) = Channel::balance_channel::<String>(64);
    let mut discovery = Discovery {
        replicas,
        endpoint,
        health: BTreeMap::new(),
        in_balancer: BTreeSet::new(),
        changes,
    };
    let any = discovery.round().await;
    tokio::spawn(async move {
        loop {
            tokio::select! {
                () = discovery.changes.closed() => return,
                () = tokio::time::sleep(refresh) => {}
            }
            discovery.round().await;
        }
    });
    (channel, any)
}

struct Discovery {
    replicas: Replicas,
    endpoint: EndpointFactory,
    /// A channel per replica for its health checks, kept between rounds.
    health: BTreeMap<String, Channel>,
    /// The replicas the balancer has now.
    in_balancer: BTreeSet<String>,
    changes: Sender<Change<String, Endpoint>>,
}

impl Discovery {
    /// One refresh: resolve, check health, insert and remove. True when any replica answered.
    async fn round(&mut self) -> bool {
        let uris = self.replicas.resolve().await;
        self.health.retain(|uri, _| uris.contains(uri));
        let mut checks = tokio::task::JoinSet::new();
        for uri in &uris {
            let Some(endpoint) = (self.endpoint)(uri) else {
                continue;
            };
            let channel = self
                .health
                .entry(uri.clone())
                .or_insert_with(|| endpoint.connect_lazy())
                .clone();
            let uri = uri.clone();
            checks.spawn(async move { (uri, health(channel).await) });
        }
        let answers: Vec<(String, Option<ServingStatus>)> = checks.join_all().await;
        let serving: BTreeSet<String> = answers
            .iter()
            .filter(|(_, status)| *status == Some(ServingStatus::Serving))
            .map(|(uri, _)| uri.clone())
            .collect();
        let answering: BTreeSet<String> = answers
            .iter()
            .filter(|(_, status)| status.is_some())
            .map(|(uri, _)| uri.clone())
            .collect();
        let wanted = if serving.is_empty() {
            answering
        } else {
            serving
        };
        for uri in self
            .in_balancer
            .difference(&wanted)
            .cloned()
            .collect::<Vec<_>>()
        {
            if self
                .changes
                .send(Change::Remove(uri.clone()))
                .await
                .is_err()
            {
                return false;
            }
            self.in_balancer.remove(&uri);
        }
        for uri in wanted
            .difference(&self.in_balancer)
            .cloned()
            .collect::<Vec<_>>()
        {
            let Some(endpoint) = (self.endpoint)(&uri) else {
                continue;
            };
            if self
                .changes
                .send(Change::Insert(uri.clone(), endpoint))
                .await
                .is_err()
            {
                return false;
            }
            self.in_balancer.insert(uri);
        }
        !self.in_balancer.is_empty()
    }
}

/// The replica's health for the whole server, or `None` when it does not answer in time.
async fn health(channel: Channel) -> Option<ServingStatus> {
    let mut client = HealthClient::new(channel);
    let check = client.check(HealthCheckRequest {
        service: String::new(),
    });
    match tokio::time::timeout(Duration::from_secs(2), check).await {
        Ok(Ok(response)) => Some(response.into_inner().status()),
        _ => None,
    }
}
