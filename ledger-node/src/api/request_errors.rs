//! A tower layer on both ports: the statuses tonic gives a request it could not read, mapped to
//! what they mean for the caller.
//!
//! - A request body that does not decode as its message (invalid UTF-8 in a string field, a
//!   truncated field, a wrong wire type): tonic-prost answers INTERNAL, which a client must read
//!   as "the server failed; the write may have been applied" and retry, and which the operations
//!   alert on INTERNAL fires on. It is the caller's error and nothing ran: INVALID_ARGUMENT.
//! - A request over the message limit (`api::MESSAGE_BYTES_MAX`): tonic answers OUT_OF_RANGE;
//!   the gRPC spec (and docs/operations.md) say RESOURCE_EXHAUSTED.
//!
//! Only a status in the response headers is looked at (tonic decodes the request of a unary or
//! server-streaming call before the handler runs and answers a failure as a trailers-only
//! response), and only with the messages tonic and prost write for these two cases, so a
//! handler's own INTERNAL stays INTERNAL. Server side only, on purpose: a client that cannot
//! decode a *response* must still treat the call as maybe applied (INTERNAL).

use std::task::{Context, Poll};

use futures::future::{BoxFuture, FutureExt};

/// How prost's `DecodeError` displays (tonic-prost puts it in the status message).
const DECODE_ERROR_PREFIX: &str = "failed to decode Protobuf message";
/// How tonic says a request's length prefix is above the server's decoding limit.
const TOO_LARGE_MARK: &str = "decoded message length too large";

/// The code a caller should see for a request-reading failure tonic reported as `code`.
pub fn remapped(code: tonic::Code, message: &str) -> Option<tonic::Code> {
    match code {
        tonic::Code::Internal if message.starts_with(DECODE_ERROR_PREFIX) => Some(tonic::Code::InvalidArgument),
        tonic::Code::OutOfRange if message.contains(TOO_LARGE_MARK) => Some(tonic::Code::ResourceExhausted),
        _ => None,
    }
}

/// Rewrites `grpc-status` in trailers-only response headers when [`remapped`] says so.
fn remap_headers(headers: &mut http::HeaderMap) {
    let Some(status) = tonic::Status::from_header_map(headers) else { return };
    if let Some(code) = remapped(status.code(), status.message()) {
        headers.insert("grpc-status", http::HeaderValue::from(code as i32));
    }
}

#[derive(Clone, Default)]
pub struct RequestErrorsLayer;

impl<S> tower_layer::Layer<S> for RequestErrorsLayer {
    type Service = RequestErrors<S>;
    fn layer(&self, inner: S) -> RequestErrors<S> {
        RequestErrors { inner }
    }
}

#[derive(Clone)]
pub struct RequestErrors<S> {
    inner: S,
}

impl<S, B, RB> tower_service::Service<http::Request<B>> for RequestErrors<S>
where
    S: tower_service::Service<http::Request<B>, Response = http::Response<RB>>,
    S::Future: Send + 'static,
{
    type Response = http::Response<RB>;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<http::Response<RB>, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        self.inner
            .call(request)
            .map(|response| {
                response.map(|mut r| {
                    remap_headers(r.headers_mut());
                    r
                })
            })
            .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::Code;

    #[test]
    fn only_request_reading_failures_are_remapped() {
        let utf8 = "failed to decode Protobuf message: Asset.code: CreateAssetsRequest.assets: invalid string value: data is not UTF-8 encoded";
        assert_eq!(remapped(Code::Internal, utf8), Some(Code::InvalidArgument));
        let big = "Error, decoded message length too large: found 40000000 bytes, the limit is: 33554432 bytes";
        assert_eq!(remapped(Code::OutOfRange, big), Some(Code::ResourceExhausted));
        assert_eq!(remapped(Code::Internal, "node stopped serving: disk"), None, "a handler's INTERNAL stays");
        assert_eq!(remapped(Code::OutOfRange, "cursor beyond the end"), None);
        assert_eq!(remapped(Code::Unavailable, utf8), None);
    }

    #[test]
    fn headers_are_rewritten_in_place() {
        let mut headers = http::HeaderMap::new();
        tonic::Status::internal("failed to decode Protobuf message: invalid varint").add_header(&mut headers).unwrap();
        remap_headers(&mut headers);
        assert_eq!(tonic::Status::from_header_map(&headers).unwrap().code(), Code::InvalidArgument);
        let mut headers = http::HeaderMap::new();
        tonic::Status::internal("storage failed").add_header(&mut headers).unwrap();
        remap_headers(&mut headers);
        assert_eq!(tonic::Status::from_header_map(&headers).unwrap().code(), Code::Internal);
    }
}
