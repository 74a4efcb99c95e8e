//! The gRPC calls the scenarios load the server with, and the setup calls they share.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use active_sessions_client::proto as pb;
use active_sessions_e2e::SignIn;
use active_sessions_server::{domain::token::SessionToken, store::entity::session};
use anyhow::{Context, Result, ensure};
use pb::session_service_client::SessionServiceClient;
use sea_orm::{DatabaseConnection, EntityTrait};
use tonic::transport::Channel;
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

use crate::{
    load::{Call, call},
    server::BenchServer,
};

/// Waits until the database watcher has reported SERVING (shortly after start).
pub async fn wait_until_serving(channel: &Channel) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let status = health(channel.clone()).await;
        if status
            .as_ref()
            .is_ok_and(|s| *s == ServingStatus::Serving as i32)
        {
            return Ok(());
        }
        ensure!(
            Instant::now() < deadline,
            "health never became SERVING: {status:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn health(channel: Channel) -> Result<i32> {
    let request = HealthCheckRequest {
        service: String::new(),
    };
    Ok(HealthClient::new(channel)
        .check(request)
        .await?
        .into_inner()
        .status)
}

/// `grpc.health.v1.Health/Check`: the transport baseline. Either answer counts: a server
/// whose revocation feed falls behind under load reports NOT_SERVING for a while, at the same
/// cost.
pub fn health_check() -> Call {
    call(|channel, _, _| async move {
        health(channel).await?;
        Ok(())
    })
}

/// ValidateSession of the token `pick(worker, i)` gives, which must be valid.
pub fn validate(pick: impl Fn(usize, u64) -> String + Send + Sync + 'static) -> Call {
    call(move |channel, worker, i| {
        let session_token = pick(worker, i);
        async move {
            let valid = SessionServiceClient::new(channel)
                .validate_session(pb::ValidateSessionRequest { session_token })
                .await?
                .into_inner()
                .valid;
            ensure!(valid, "a registered session did not validate");
            Ok(())
        }
    })
}

/// ValidateSession of `tokens`, each worker going through them in its own order.
pub fn validate_each(tokens: &[String]) -> Call {
    let tokens = Arc::new(tokens.to_vec());
    validate(move |w, i| tokens[(w * 37 + i as usize) % tokens.len()].clone())
}

/// The domain's `Sessions::validate` of `tokens`, in turn, without gRPC (run it on the
/// server's runtime).
pub fn validate_in_process(server: &BenchServer, tokens: &[String]) -> Result<Call> {
    let sessions = server.services.sessions().clone();
    let parsed: Arc<Vec<SessionToken>> = Arc::new(
        tokens
            .iter()
            .map(|t| SessionToken::parse(t))
            .collect::<Result<_, _>>()?,
    );
    Ok(call(move |_, worker, i| {
        let sessions = sessions.clone();
        let parsed = parsed.clone();
        async move {
            let token = &parsed[(worker * 37 + i as usize) % parsed.len()];
            let valid = sessions.validate(token).await?;
            ensure!(valid.is_some(), "a registered session did not validate");
            Ok(())
        }
    }))
}

/// Registers `count` sessions with `concurrency` calls in flight; returns (session id, token).
pub async fn register_many(
    channels: &[Channel],
    count: usize,
    concurrency: usize,
    sign_in: impl Fn(usize) -> SignIn,
) -> Result<Vec<(String, String)>> {
    use futures::{StreamExt, TryStreamExt};
    let requests: Vec<_> = (0..count).map(|i| (i, sign_in(i).request())).collect();
    futures::stream::iter(requests)
        .map(|(i, request)| {
            let mut client = SessionServiceClient::new(channels[i % channels.len()].clone());
            async move {
                let response = client.register_session(request).await?.into_inner();
                let session = response.session.context("no session")?;
                Ok::<_, anyhow::Error>((session.session_id, response.session_token))
            }
        })
        .buffered(concurrency)
        .try_collect()
        .await
}

/// Registers one session of `account` on `device` and reads back its row and token: the
/// template of sessions seeded in bulk. `db` is the bench's own connection to the database.
pub async fn register_template(
    channel: &Channel,
    db: &DatabaseConnection,
    account: &str,
    device: &str,
) -> Result<(session::Model, String)> {
    let request = SignIn::browser(account, device).request();
    let response = SessionServiceClient::new(channel.clone())
        .register_session(request)
        .await?
        .into_inner();
    let id = response.session.context("no session")?.session_id;
    let template = session::Entity::find_by_id(id)
        .one(db)
        .await?
        .context("registered session not in the table")?;
    Ok((template, response.session_token))
}

/// Registers `count` sessions and returns their tokens.
pub async fn register_tokens(
    channels: &[Channel],
    count: usize,
    sign_in: impl Fn(usize) -> SignIn,
) -> Result<Vec<String>> {
    Ok(register_many(channels, count, 16, sign_in)
        .await?
        .into_iter()
        .map(|(_, token)| token)
        .collect())
}
