//! The node's side of the HTTP API: message ids (shared with SMTP), DKIM signing, sending
//! domains, and API keys.
//!
//! API keys are stored hashed (PBKDF2, as SMTP passwords). Verifying one costs tens of
//! milliseconds by design, so a successful check is remembered for a minute, keyed by a
//! SHA-256 of the key and the stored hash it matched: changing or removing a user's key
//! invalidates it at once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::inbound::Inbound;
use crate::{settings, signing};

/// (user, SHA-256 of the key) -> (the stored hash it matched, when).
type Verified = HashMap<(String, Vec<u8>), (String, Instant)>;

pub struct ApiGlue {
    inbound: Arc<Inbound>,
    verified: Mutex<Verified>,
}

const REMEMBER: Duration = Duration::from_secs(60);

impl ApiGlue {
    pub fn new(inbound: Arc<Inbound>) -> Self {
        Self {
            inbound,
            verified: Mutex::new(HashMap::new()),
        }
    }
}

fn sha256(s: &str) -> Vec<u8> {
    aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, s.as_bytes())
        .as_ref()
        .to_vec()
}

impl hato_api::cmc::Mailer for ApiGlue {
    fn next_id(&self) -> (String, u64) {
        self.inbound.next_id()
    }

    fn hostname(&self) -> String {
        self.inbound.hostname.clone()
    }

    fn is_sending_domain(&self, domain: &str) -> bool {
        settings::sending_domain(self.inbound.cluster.reader(), domain).is_some()
    }

    fn sign(&self, message: Vec<u8>) -> Vec<u8> {
        signing::sign(self.inbound.cluster.reader(), message)
    }

    fn check_api_key(&self, user: &str, key: &str) -> bool {
        let reader = self.inbound.cluster.reader();
        let stored = reader
            .setting(&format!("{}{user}", settings::API_USER_PREFIX))
            .ok()
            .flatten();
        let cache_key = (user.to_string(), sha256(key));
        if let Some(stored) = &stored {
            let mut v = self.verified.lock().expect("api key cache");
            v.retain(|_, (_, at)| at.elapsed() < REMEMBER);
            if v.get(&cache_key).is_some_and(|(s, _)| s == stored) {
                return true;
            }
        }
        let good = settings::check_api_key(reader, user, key);
        if good {
            if let Some(stored) = stored {
                self.verified
                    .lock()
                    .expect("api key cache")
                    .insert(cache_key, (stored, Instant::now()));
            }
        }
        good
    }
}
