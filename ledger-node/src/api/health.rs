//! The standard operator services on the client port: `grpc.health.v1.Health` (load balancers,
//! Kubernetes probes, `grpc-health-probe`) and gRPC server reflection v1 and v1alpha (`grpcurl`).
//!
//! Health is a view of Raft: SERVING while this node knows a current leader (it can take writes,
//! directly or by telling the client where to go), NOT_SERVING while there is none, once Raft has
//! stopped on a fatal error, and from the moment the node begins shutting down.

use openraft::type_config::async_runtime::WatchReceiver;
use tokio::sync::watch;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

use crate::raft::Raft;

/// Every method path the health and reflection services serve (for the authorization table's
/// coverage test: these are served next to the ones compiled from our .proto files).
pub fn method_paths() -> Vec<String> {
    let health = tonic_health::pb::health_server::SERVICE_NAME;
    let v1 = tonic_reflection::pb::v1::server_reflection_server::SERVICE_NAME;
    let v1alpha = tonic_reflection::pb::v1alpha::server_reflection_server::SERVICE_NAME;
    vec![
        format!("/{health}/Check"),
        format!("/{health}/Watch"),
        format!("/{v1}/ServerReflectionInfo"),
        format!("/{v1alpha}/ServerReflectionInfo"),
    ]
}

/// The reflection services (v1 and v1alpha) over every service in `advertised`. Only what this
/// port serves is advertised: the Raft peer service is listed only when it shares the port.
pub fn reflection(
    advertised: &[&str],
) -> anyhow::Result<(
    tonic_reflection::server::v1::ServerReflectionServer<impl tonic_reflection::server::v1::ServerReflection>,
    tonic_reflection::server::v1alpha::ServerReflectionServer<
        impl tonic_reflection::server::v1alpha::ServerReflection,
    >,
)> {
    let builder = || {
        let mut builder = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(ledger_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET);
        for name in advertised {
            builder = builder.with_service_name(*name);
        }
        builder.with_service_name(tonic_health::pb::health_server::SERVICE_NAME)
    };
    Ok((builder().build_v1()?, builder().build_v1alpha()?))
}

/// The overall status ("" service, what probes ask for by default) from Raft's view.
fn status_of(metrics: &openraft::RaftMetrics<crate::raft::TypeConfig>) -> ServingStatus {
    if metrics.running_state.is_ok() && metrics.current_leader.is_some() {
        ServingStatus::Serving
    } else {
        ServingStatus::NotServing
    }
}

/// Keeps the reported health in step with Raft until `stop` turns true, then reports
/// NOT_SERVING for the rest of the shutdown (probes stop routing here before the port closes).
pub async fn track_raft(reporter: HealthReporter, raft: Raft, mut stop: watch::Receiver<bool>) {
    let mut metrics = raft.metrics();
    let mut reported = None;
    loop {
        let status = if *stop.borrow() { ServingStatus::NotServing } else { status_of(&metrics.borrow_watched()) };
        if reported != Some(status) {
            tracing::info!(status = ?status, "health");
            reporter.set_service_status("", status).await;
            reported = Some(status);
        }
        if *stop.borrow() {
            return;
        }
        tokio::select! {
            changed = metrics.changed() => if changed.is_err() {
                reporter.set_service_status("", ServingStatus::NotServing).await;
                return;
            },
            _ = stop.changed() => {}
        }
    }
}
