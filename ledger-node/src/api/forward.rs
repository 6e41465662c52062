//! Writes sent to a follower are forwarded to the leader (one hop), so a client behind a load
//! balancer that lands on any node works, as with etcd and CockroachDB.
//!
//! A tower layer on the client port, inside the auth layer (the follower authenticates the caller
//! first). A call is forwarded when all of these hold, else it is served here as before (a
//! follower answers UNAVAILABLE with `x-ledger-leader`):
//! - it is a write that proposes to Raft ([`FORWARDED`]); membership changes are not forwarded
//!   (the operator's CLI follows the trailer);
//! - this node knows a leader and it is another node;
//! - it was not forwarded already (`x-ledger-forwarded`): one hop at most, so a stale leader
//!   answers with the trailer instead of passing the call on again;
//! - the leader can authorize it as the original caller: authentication is off, or the caller
//!   sent a bearer token (forwarded as is: the leader authenticates it again with its own
//!   tokens file). A caller that authenticated with a client certificate is never forwarded: the
//!   certificate cannot be passed on, and the follower's own identity must not stand in for it.
//!
//! The request is passed on unchanged (headers, `grpc-timeout`, body), so the leader applies its
//! own checks and the idempotency key (or the item's fields) makes a retry after an unknown
//! outcome safe. A forwarding failure (no connection, no answer in [`FORWARD_TIMEOUT`]) answers
//! UNAVAILABLE with `x-ledger-outcome: unknown` (the leader may have applied it) and
//! `x-ledger-leader`.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use futures::future::BoxFuture;
use tonic::body::Body;
use tonic::metadata::MetadataValue;
use tonic::transport::{Channel, ClientTlsConfig, Endpoint};

use super::status::{LEADER_HEADER, OUTCOME_HEADER};
use crate::service::Node;

/// Request metadata set on a forwarded call: the forwarding node's id. A call carrying it is
/// never forwarded again.
pub const FORWARDED_HEADER: &str = "x-ledger-forwarded";
/// How long a follower waits for the leader's answer to a forwarded call (the caller's own
/// deadline, sent along as `grpc-timeout`, applies on the leader too).
pub const FORWARD_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a follower tries to connect to the leader.
pub const FORWARD_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Leader channels kept at most (one per leader address seen; a cluster has few).
const CHANNELS_MAX: usize = 16;

/// The writes a follower forwards: every client write that proposes to Raft.
pub const FORWARDED: &[&str] = &[
    "/ledger.v1.Accounts/RebindExternalRefs",
    "/ledger.v1.Accounts/UpdateAccounts",
    "/ledger.v1.Ledger/CreateAccounts",
    "/ledger.v1.Ledger/CreateAssets",
    "/ledger.v1.Ledger/CreateTransfers",
    "/ledger.v1.Ledger/SetAccountStatus",
    "/ledger.v1.Risk/SetBlocklist",
    "/ledger.v1.Risk/SetLimits",
    "/ledger.v1.Risk/SetRiskRules",
    "/ledger.v1.Wallet/IssueToken",
    "/ledger.v1.Wallet/RevokeToken",
    "/ledger.v1.Wallet/SyncOfflineRecords",
];

/// What the layer needs to forward: the node (who leads), whether authentication is on, and the
/// TLS settings to reach another node's client port.
pub struct Forwarder {
    node: Node,
    auth_on: bool,
    /// `None`: client ports are plaintext.
    tls: Option<ClientTlsConfig>,
    channels: Mutex<BTreeMap<String, Channel>>,
}

impl Forwarder {
    pub fn new(node: Node, auth_on: bool, tls: Option<ClientTlsConfig>) -> Arc<Forwarder> {
        Arc::new(Forwarder { node, auth_on, tls, channels: Mutex::new(BTreeMap::new()) })
    }

    /// The leader's client address, when `request` is to be forwarded there.
    fn target<B>(&self, request: &http::Request<B>) -> Option<String> {
        if !FORWARDED.contains(&request.uri().path()) || request.headers().contains_key(FORWARDED_HEADER) {
            return None;
        }
        if self.auth_on && !request.headers().contains_key(http::header::AUTHORIZATION) {
            return None;
        }
        let metrics = self.node.metrics();
        let leader = metrics.current_leader.filter(|l| *l != self.node.id())?;
        let api = metrics.membership_config.membership().get_node(&leader)?.api.clone();
        Some(api).filter(|a| !a.is_empty())
    }

    /// A lazily connecting channel to `address`, kept for the next call.
    fn channel(&self, address: &str) -> Result<Channel, String> {
        let mut channels = self.channels.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(channel) = channels.get(address) {
            return Ok(channel.clone());
        }
        let mut endpoint = Endpoint::from_shared(address.to_string())
            .map_err(|e| format!("leader address {address:?}: {e}"))?
            .connect_timeout(FORWARD_CONNECT_TIMEOUT);
        if let Some(tls) = &self.tls {
            endpoint = endpoint.tls_config(tls.clone()).map_err(|e| format!("TLS to the leader at {address}: {e}"))?;
        }
        let channel = endpoint.connect_lazy();
        if channels.len() >= CHANNELS_MAX {
            channels.clear();
        }
        channels.insert(address.to_string(), channel.clone());
        Ok(channel)
    }

    async fn forward(self: Arc<Self>, leader: String, mut request: http::Request<Body>) -> http::Response<Body> {
        request.headers_mut().insert(FORWARDED_HEADER, http::HeaderValue::from(self.node.id()));
        let path = request.uri().path().to_string();
        let mut channel = match self.channel(&leader) {
            Ok(channel) => channel,
            Err(why) => return unknown_outcome(&leader, &why),
        };
        let call = async {
            futures::future::poll_fn(|cx| <Channel as tower_service::Service<http::Request<Body>>>::poll_ready(&mut channel, cx)).await?;
            <Channel as tower_service::Service<http::Request<Body>>>::call(&mut channel, request).await
        };
        match tokio::time::timeout(FORWARD_TIMEOUT, call).await {
            Ok(Ok(response)) => {
                tracing::debug!(%leader, method = %path, "write forwarded to the leader");
                response
            }
            Ok(Err(e)) => unknown_outcome(&leader, &format!("forwarding to the leader failed: {e}")),
            Err(_) => unknown_outcome(&leader, &format!("the leader did not answer within {FORWARD_TIMEOUT:?}")),
        }
    }
}

/// UNAVAILABLE, outcome unknown (the leader may have applied it), and where the leader is.
fn unknown_outcome(leader: &str, why: &str) -> http::Response<Body> {
    tracing::warn!(%leader, why, "forwarding a write failed");
    let mut status = tonic::Status::unavailable(format!("{why}; retry with the same idempotency key"));
    status.metadata_mut().insert(OUTCOME_HEADER, MetadataValue::from_static("unknown"));
    if let Ok(address) = MetadataValue::try_from(leader) {
        status.metadata_mut().insert(LEADER_HEADER, address);
    }
    status.into_http()
}

#[derive(Clone)]
pub struct ForwardLayer {
    pub forwarder: Arc<Forwarder>,
}

impl<S> tower_layer::Layer<S> for ForwardLayer {
    type Service = Forward<S>;
    fn layer(&self, inner: S) -> Forward<S> {
        Forward { inner, forwarder: self.forwarder.clone() }
    }
}

#[derive(Clone)]
pub struct Forward<S> {
    inner: S,
    forwarder: Arc<Forwarder>,
}

impl<S> tower_service::Service<http::Request<Body>> for Forward<S>
where
    S: tower_service::Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<http::Response<Body>, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        match self.forwarder.target(&request) {
            Some(leader) => {
                let forwarder = self.forwarder.clone();
                Box::pin(async move { Ok(forwarder.forward(leader, request).await) })
            }
            None => Box::pin(self.inner.call(request)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_writes_are_forwarded_and_each_is_a_served_method() {
        for path in FORWARDED {
            assert!(ledger_proto::METHOD_PATHS.contains(path), "{path}");
            assert!(super::super::auth::access(path).is_some(), "{path}");
        }
        for read in ["/ledger.v1.Ledger/LookupAccounts", "/ledger.v1.Cluster/AddLearner", "/ledger.v1.Ledger/WatchAccount"] {
            assert!(!FORWARDED.contains(&read), "{read}");
        }
        let mut sorted = FORWARDED.to_vec();
        sorted.sort();
        assert_eq!(sorted, FORWARDED, "sorted, no duplicates");
    }
}
