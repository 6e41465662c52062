//! Free loopback ports.

use std::net::TcpListener;

/// A loopback port that was free a moment ago (bound to port 0, then released). Another
/// process may take it before the node binds it; on a test machine that is rare enough.
pub fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}
