//! Prometheus metrics at `/metrics`: requests and their latency per service
//! and operation, authentication failures, and audit sink lag.

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Labels of a request metric.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// `sts`, `iam`, `cloudshell`, …
    pub service: String,
    /// The operation, e.g. `GetCallerIdentity`; `unknown` when unparsable.
    pub operation: String,
    /// `ok`, or the error code.
    pub outcome: String,
}

/// Labels of a latency metric.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OperationLabels {
    /// The service.
    pub service: String,
    /// The operation.
    pub operation: String,
}

/// Labels of an authentication failure.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AuthFailureLabels {
    /// The service.
    pub service: String,
    /// The error code given to the caller.
    pub code: String,
}

/// Every metric the server keeps.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// Requests by service, operation and outcome.
    pub requests: Family<RequestLabels, Counter>,
    /// Request latency by service and operation.
    pub latency: Family<OperationLabels, Histogram>,
    /// Authentication failures by service and code.
    pub auth_failures: Family<AuthFailureLabels, Counter>,
    /// Audit records not yet in a delivery file.
    pub audit_pending: Gauge,
    /// Age of the oldest undelivered audit record, in seconds.
    pub audit_oldest_pending_seconds: Gauge<f64, AtomicU64>,
}

impl Metrics {
    /// A fresh set of metrics.
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("seashell");
        let requests = Family::<RequestLabels, Counter>::default();
        let latency = Family::<OperationLabels, Histogram>::new_with_constructor(|| {
            // 100 µs … ~3.3 s.
            Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(
                0.0001, 2.0, 16,
            ))
        });
        let auth_failures = Family::<AuthFailureLabels, Counter>::default();
        let audit_pending = Gauge::default();
        let audit_oldest_pending_seconds = Gauge::<f64, AtomicU64>::default();
        registry.register(
            "requests",
            "Requests by service, operation and outcome",
            requests.clone(),
        );
        registry.register(
            "request_duration_seconds",
            "Request latency by service and operation",
            latency.clone(),
        );
        registry.register(
            "auth_failures",
            "Authentication failures",
            auth_failures.clone(),
        );
        registry.register(
            "audit_pending_records",
            "Audit records not yet delivered",
            audit_pending.clone(),
        );
        registry.register(
            "audit_oldest_pending_seconds",
            "Age of the oldest undelivered audit record",
            audit_oldest_pending_seconds.clone(),
        );
        Metrics {
            registry,
            requests,
            latency,
            auth_failures,
            audit_pending,
            audit_oldest_pending_seconds,
        }
    }

    /// The text exposition format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}
