//! The validation cache and revocations: it never reports a revoked session valid once the
//! revocation has reached its stream.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use super::{connect, live_cache, sign_in, within};
use active_sessions_client::{
    Owner, Product, Registration, RevocationScope, RevokeAllOptions, Trust, TrustMethod,
};
use active_sessions_e2e::e2e;

e2e! {
    async fn the_cache_never_reports_a_revoked_session_valid_once_the_revocation_reached_its_stream(app) {
        let connection = connect(&app).await;
        let sessions = connection.sessions();
        let cache = live_cache(&app, |builder| builder).await;

        // Ten sessions on two accounts; each is validated once (from the server) and then from
        // memory.
        let mut tokens: Vec<(String, String, String, String)> = Vec::new(); // account, device, session, token
        for account in ["acct-1", "acct-2"] {
            for device in ["d0", "d1", "d2", "d3"] {
                let (session, token) = sign_in(&sessions, account, device).await;
                tokens.push((account.into(), device.into(), session, token));
            }
        }
        let codex = sessions.register(Registration::codex_desktop("acct-1", "install")).await.unwrap();
        tokens.push(("acct-1".into(), "install".into(), codex.session.session_id.clone(), codex.token.clone()));
        let hidden = sessions.register(Registration::codex_cli("acct-2", "cli")).await.unwrap();
        tokens.push(("acct-2".into(), "cli".into(), hidden.session.session_id.clone(), hidden.token.clone()));
        for (_, _, session, token) in &tokens {
            assert_eq!(cache.validate(token).await.unwrap().unwrap().session_id, *session);
        }
        let before = cache.stats();
        for (_, _, _, token) in &tokens {
            assert!(cache.validate(token).await.unwrap().is_some());
        }
        let stats = cache.stats();
        assert_eq!(stats.hits - before.hits, tokens.len() as u64, "{stats:?}");
        assert_eq!(stats.entries, tokens.len());

        // A validator hammers the cache throughout. A validation that starts after the
        // revocation of its token reached the stream must not say valid.
        let revoked: Arc<Mutex<HashMap<String, u64>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let hammer = tokio::spawn({
            let cache = cache.clone();
            let revoked = revoked.clone();
            let stop = stop.clone();
            let tokens: Vec<String> = tokens.iter().map(|(_, _, _, token)| token.clone()).collect();
            async move {
                let mut checked = 0_u64;
                while !stop.load(Ordering::SeqCst) {
                    for token in &tokens {
                        let applied = cache.stats().revocations_applied;
                        let answer = cache.validate(token).await.expect("validation");
                        let revoked_at = revoked.lock().unwrap().get(token).copied();
                        if let Some(revoked_at) = revoked_at
                            && revoked_at <= applied
                        {
                            assert!(
                                answer.is_none(),
                                "revocation #{revoked_at} had reached the stream, yet the cache said valid"
                            );
                            checked += 1;
                        }
                    }
                }
                checked
            }
        });

        let owner_1 = Owner::account("acct-1");
        let owner_2 = Owner::account("acct-2");
        let devices = connection.trusted_devices();
        devices.trust(Trust::new("acct-2", "d0", Product::Chatgpt, TrustMethod::Passkey)).await.unwrap();
        let mut expected_revoked: Vec<&str> = Vec::new();
        for step in 0..5 {
            let (covered, scope): (Vec<&str>, RevocationScope) = match step {
                0 => {
                    sessions.revoke_session(owner_1.clone(), &tokens[0].2, true).await.unwrap();
                    (vec![tokens[0].3.as_str()], RevocationScope::Session)
                }
                1 => {
                    sessions.revoke_row(owner_1.clone(), "d1", true).await.unwrap();
                    (vec![tokens[1].3.as_str()], RevocationScope::Device)
                }
                2 => {
                    let removed = devices.remove(owner_2.clone(), "d0", true).await.unwrap();
                    assert_eq!(removed.revoked_session_ids, std::slice::from_ref(&tokens[4].2));
                    (vec![tokens[4].3.as_str()], RevocationScope::Device)
                }
                3 => {
                    sessions.revoke_all(owner_2.clone(), RevokeAllOptions::confirmed()).await.unwrap();
                    (vec![tokens[5].3.as_str(), tokens[6].3.as_str(), tokens[7].3.as_str()], RevocationScope::All)
                }
                _ => {
                    sessions.revoke_row(owner_1.clone(), "install", true).await.unwrap();
                    (vec![tokens[8].3.as_str()], RevocationScope::Device)
                }
            };
            let k = step + 1;
            // The revocation reaches the cache within a second of the log-out returning.
            let took = within(Duration::from_secs(1), "the revocation reaching the cache", || {
                cache.stats().revocations_applied >= k
            })
            .await;
            eprintln!("revocation #{k} ({scope:?}) reached the cache after {took:?}");
            {
                let mut revoked = revoked.lock().unwrap();
                for token in &covered {
                    revoked.insert((*token).to_owned(), k);
                }
            }
            expected_revoked.extend(covered);
            // Now: every revoked token is refused (and not from memory), every other one is
            // still valid.
            for (_, _, _, token) in &tokens {
                let answer = cache.validate(token).await.unwrap();
                assert_eq!(answer.is_none(), expected_revoked.contains(&token.as_str()), "after step {k}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        stop.store(true, Ordering::SeqCst);
        let checked = hammer.await.expect("the hammer found no stale answer");
        assert!(checked > 0);

        // Still valid: the sessions no revocation covered, and the hidden CLI session, which a
        // log-out of all sessions does not end. The cache cannot tell a hidden kind apart, so it
        // dropped that one with its account and does not cache it again while it remembers the
        // log-out: it is answered by the server.
        let stats = cache.stats();
        eprintln!("{stats:?}, {checked} checks of revoked tokens");
        assert_eq!(stats.revocations_applied, 5);
        assert!(stats.hits > 0 && stats.live);
        let still_valid: Vec<&str> = tokens
            .iter()
            .map(|(_, _, _, token)| token.as_str())
            .filter(|token| !expected_revoked.contains(token))
            .collect();
        assert_eq!(still_valid, [tokens[2].3.as_str(), tokens[3].3.as_str(), hidden.token.as_str()]);
        assert_eq!(stats.entries, 2);
    }
}
