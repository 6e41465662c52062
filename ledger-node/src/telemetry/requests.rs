//! A tower layer on the client port: every gRPC call counted by method and grpc status, timed to
//! its response headers (for unary calls, the whole handler; for streams, time to first byte).
//!
//! The status is the one in the response headers (tonic sends errors of a handler, and the auth
//! layer's refusals, as trailers-only responses); a call without one is counted as OK: an error a
//! stream sends in its trailers later is not seen here. The method label is the path only for
//! methods in the authorization table, "unknown" otherwise: labels stay bounded whatever callers send.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use super::{GRPC_REQUEST_DURATION_SECONDS, GRPC_REQUESTS_TOTAL};

#[derive(Clone, Default)]
pub struct RequestMetricsLayer;

impl<S> tower_layer::Layer<S> for RequestMetricsLayer {
    type Service = RequestMetrics<S>;
    fn layer(&self, inner: S) -> RequestMetrics<S> {
        RequestMetrics { inner }
    }
}

#[derive(Clone)]
pub struct RequestMetrics<S> {
    inner: S,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

impl<S, B, RB> tower_service::Service<http::Request<B>> for RequestMetrics<S>
where
    S: tower_service::Service<http::Request<B>, Response = http::Response<RB>>,
    S::Future: Send + 'static,
{
    type Response = http::Response<RB>;
    type Error = S::Error;
    type Future = BoxFuture<Result<http::Response<RB>, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let path = request.uri().path();
        let method: &'static str = crate::api::auth::known_path(path).unwrap_or("unknown");
        let started = Instant::now();
        let future = self.inner.call(request);
        Box::pin(async move {
            let response = future.await;
            let code = match &response {
                Ok(r) => r
                    .headers()
                    .get("grpc-status")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<i32>().ok())
                    .map(tonic::Code::from_i32)
                    .unwrap_or(tonic::Code::Ok),
                Err(_) => tonic::Code::Unknown,
            };
            metrics::counter!(GRPC_REQUESTS_TOTAL, "method" => method, "code" => code_name(code)).increment(1);
            metrics::histogram!(GRPC_REQUEST_DURATION_SECONDS, "method" => method)
                .record(started.elapsed().as_secs_f64());
            response
        })
    }
}

/// The canonical upper-case name (`OK`, `UNAVAILABLE`, ...), as grpc-go and Envoy label it.
fn code_name(code: tonic::Code) -> &'static str {
    use tonic::Code::*;
    match code {
        Ok => "OK",
        Cancelled => "CANCELLED",
        Unknown => "UNKNOWN",
        InvalidArgument => "INVALID_ARGUMENT",
        DeadlineExceeded => "DEADLINE_EXCEEDED",
        NotFound => "NOT_FOUND",
        AlreadyExists => "ALREADY_EXISTS",
        PermissionDenied => "PERMISSION_DENIED",
        ResourceExhausted => "RESOURCE_EXHAUSTED",
        FailedPrecondition => "FAILED_PRECONDITION",
        Aborted => "ABORTED",
        OutOfRange => "OUT_OF_RANGE",
        Unimplemented => "UNIMPLEMENTED",
        Internal => "INTERNAL",
        Unavailable => "UNAVAILABLE",
        DataLoss => "DATA_LOSS",
        Unauthenticated => "UNAUTHENTICATED",
    }
}
