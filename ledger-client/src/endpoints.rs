//! The known endpoints, which one to try first, and one cached `Channel` per endpoint.
//!
//! Channels are created lazily (no connection until the first call) so that `connect` never
//! blocks and a dead node costs nothing until it is tried. A `Channel` reconnects by itself and
//! multiplexes every concurrent call over one HTTP/2 connection, so one per endpoint is enough.

use crate::error::ClientError;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;
use tonic::transport::{Channel, ClientTlsConfig, Endpoint};

/// Bound on the endpoint list: redirects add endpoints, and a misbehaving server must not make
/// the list (and the channel cache) grow without end.
pub const ENDPOINTS_MAX: usize = 64;

/// HTTP/2 pings detect a dead peer on idle connections and on long `watch_account` streams.
const KEEP_ALIVE_INTERVAL: Duration = Duration::from_secs(30);
const KEEP_ALIVE_TIMEOUT: Duration = Duration::from_secs(10);

pub(crate) struct Endpoints {
    connect_timeout: Duration,
    /// `Some`: every endpoint is https and uses it.
    tls: Option<ClientTlsConfig>,
    state: Mutex<State>,
}

struct State {
    urls: Vec<String>,
    /// Index into `urls` of the endpoint to try first: the last one that answered, or the
    /// leader a follower named.
    preferred: usize,
    channels: HashMap<String, Channel>,
}

impl Endpoints {
    pub(crate) fn new(
        urls: Vec<String>,
        connect_timeout: Duration,
        tls: Option<crate::ClientTls>,
    ) -> Result<Endpoints, ClientError> {
        let tls_on = tls.is_some();
        let mut unique: Vec<String> = Vec::with_capacity(urls.len());
        for url in urls {
            let url = crate::retry::normalize_endpoint(&url);
            validate(&url, tls_on)?;
            if !unique.contains(&url) {
                unique.push(url);
            }
        }
        if unique.is_empty() {
            return Err(ClientError::InvalidEndpoint {
                endpoint: String::new(),
                reason: "no endpoints given".into(),
            });
        }
        if unique.len() > ENDPOINTS_MAX {
            return Err(ClientError::InvalidEndpoint {
                endpoint: unique[ENDPOINTS_MAX].clone(),
                reason: format!("more than {ENDPOINTS_MAX} endpoints"),
            });
        }
        Ok(Endpoints {
            connect_timeout,
            tls: tls.map(|t| t.config()),
            state: Mutex::new(State {
                urls: unique,
                preferred: 0,
                channels: HashMap::new(),
            }),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding this lock cannot leave the state inconsistent (every update is
        // a single assignment), so a poisoned lock is still usable.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(crate) fn list(&self) -> Vec<String> {
        self.lock().urls.clone()
    }

    pub(crate) fn preferred(&self) -> String {
        let state = self.lock();
        state.urls[state.preferred].clone()
    }

    /// An endpoint for `url` with this client's TLS settings (none for http).
    pub(crate) fn endpoint(&self, url: &str) -> Result<Endpoint, ClientError> {
        validate(url, self.tls.is_some())?;
        let invalid = |e: tonic::transport::Error| ClientError::InvalidEndpoint {
            endpoint: url.to_string(),
            reason: e.to_string(),
        };
        let endpoint = Endpoint::from_shared(url.to_string()).map_err(invalid)?;
        match &self.tls {
            Some(tls) => endpoint.tls_config(tls.clone()).map_err(invalid),
            None => Ok(endpoint),
        }
    }

    /// The cached channel for `url`, created lazily. Must run inside a Tokio runtime.
    pub(crate) fn channel(&self, url: &str) -> Result<Channel, ClientError> {
        let mut state = self.lock();
        if let Some(channel) = state.channels.get(url) {
            return Ok(channel.clone());
        }
        let channel = self
            .endpoint(url)?
            .connect_timeout(self.connect_timeout)
            .tcp_nodelay(true)
            .http2_keep_alive_interval(KEEP_ALIVE_INTERVAL)
            .keep_alive_timeout(KEEP_ALIVE_TIMEOUT)
            .keep_alive_while_idle(true)
            .connect_lazy();
        state.channels.insert(url.to_string(), channel.clone());
        Ok(channel)
    }

    /// `url` answered: try it first from now on.
    pub(crate) fn prefer(&self, url: &str) {
        let mut state = self.lock();
        if let Some(index) = state.urls.iter().position(|u| u == url) {
            state.preferred = index;
        }
    }

    /// A follower named the leader: add it if new and prefer it. Returns false (and changes
    /// nothing) when the URL is invalid or the list is full.
    pub(crate) fn redirect(&self, leader: &str) -> bool {
        if let Err(error) = validate(leader, self.tls.is_some()) {
            tracing::warn!(%leader, %error, "ignoring invalid leader redirect");
            return false;
        }
        let mut state = self.lock();
        let index = match state.urls.iter().position(|u| u == leader) {
            Some(index) => index,
            None if state.urls.len() < ENDPOINTS_MAX => {
                tracing::info!(%leader, "learned new endpoint from leader redirect");
                state.urls.push(leader.to_string());
                state.urls.len() - 1
            }
            None => {
                tracing::warn!(%leader, "endpoint list full; ignoring leader redirect");
                return false;
            }
        };
        state.preferred = index;
        true
    }

    /// `failed` did not answer: move on to the next endpoint, unless a concurrent call already
    /// moved the preference elsewhere (then keep its choice).
    pub(crate) fn rotate_after(&self, failed: &str) {
        let mut state = self.lock();
        if state.urls[state.preferred] == failed {
            state.preferred = (state.preferred + 1) % state.urls.len();
        }
    }
}

/// `url` must be of the client's scheme: https with TLS settings, http without (a redirect to
/// plaintext from a TLS cluster is refused, never followed).
fn validate(url: &str, tls: bool) -> Result<(), ClientError> {
    let invalid = |reason: String| ClientError::InvalidEndpoint {
        endpoint: url.to_string(),
        reason,
    };
    let endpoint = Endpoint::from_shared(url.to_string()).map_err(|e| invalid(e.to_string()))?;
    let uri = endpoint.uri();
    match (uri.scheme_str(), tls) {
        (Some("http"), false) | (Some("https"), true) => {}
        (Some("https"), false) => {
            return Err(invalid("https needs TLS settings (the CA: --tls-ca / LEDGER_TLS_CA)".into()));
        }
        (Some("http"), true) => {
            return Err(invalid("plaintext http with TLS settings: use https://".into()));
        }
        (Some(other), _) => return Err(invalid(format!("unsupported scheme {other:?} (http or https)"))),
        (None, _) => return Err(invalid("missing scheme".into())),
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(invalid("missing host".into()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoints(urls: &[&str]) -> Endpoints {
        Endpoints::new(
            urls.iter().map(|s| s.to_string()).collect(),
            Duration::from_secs(2),
            None,
        )
        .unwrap()
    }

    #[test]
    fn validates_and_dedups() {
        let e = endpoints(&[
            "http://127.0.0.1:7070",
            "127.0.0.1:7070",
            "http://127.0.0.1:7071/",
        ]);
        assert_eq!(
            e.list(),
            vec!["http://127.0.0.1:7070", "http://127.0.0.1:7071"]
        );
        let two = Duration::from_secs(2);
        assert!(Endpoints::new(vec![], two, None).is_err());
        assert!(Endpoints::new(vec!["https://x:1".into()], two, None).is_err(), "https without TLS settings");
        assert!(Endpoints::new(vec!["http://".into()], two, None).is_err());
        assert!(Endpoints::new(vec!["http://a b:1".into()], two, None).is_err());
        let tls = crate::ClientTls { ca_pem: b"-----BEGIN CERTIFICATE-----".to_vec(), identity: None };
        assert!(Endpoints::new(vec!["http://x:1".into()], two, Some(tls.clone())).is_err(), "no plaintext with TLS");
        let e = Endpoints::new(vec!["https://x:1".into()], two, Some(tls)).unwrap();
        assert!(!e.redirect("http://y:1"), "a redirect to plaintext is refused");
        assert!(e.redirect("https://y:1"));
    }

    #[test]
    fn rotates_and_redirects() {
        let e = endpoints(&["http://a:1", "http://b:1"]);
        assert_eq!(e.preferred(), "http://a:1");
        e.rotate_after("http://a:1");
        assert_eq!(e.preferred(), "http://b:1");
        // A stale failure report does not move the preference again.
        e.rotate_after("http://a:1");
        assert_eq!(e.preferred(), "http://b:1");
        e.rotate_after("http://b:1");
        assert_eq!(e.preferred(), "http://a:1");
        assert!(e.redirect("http://c:1"));
        assert_eq!(e.preferred(), "http://c:1");
        assert_eq!(e.list().len(), 3);
        assert!(e.redirect("http://b:1"));
        assert_eq!(e.list().len(), 3);
        assert!(!e.redirect("ftp://d:1"));
        assert_eq!(e.preferred(), "http://b:1");
        e.prefer("http://a:1");
        assert_eq!(e.preferred(), "http://a:1");
    }

    #[test]
    fn redirects_are_bounded() {
        let e = endpoints(&["http://a:1"]);
        for i in 0..ENDPOINTS_MAX * 2 {
            e.redirect(&format!("http://n{i}:1"));
        }
        assert_eq!(e.list().len(), ENDPOINTS_MAX);
    }
}
