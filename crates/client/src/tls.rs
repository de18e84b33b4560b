//! TLS for the API, the file URLs and the data channel: the system's trust
//! store, plus a CA bundle of the user's (the AWS CLI's `ca_bundle` /
//! `AWS_CA_BUNDLE`) for a Seashell whose certificate a private CA signed.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::RootCertStore;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;

/// Why no TLS configuration could be built.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The CA bundle could not be read or holds no certificate.
    #[error("CA bundle {path}: {reason}")]
    Bundle {
        /// The bundle.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// rustls refused the configuration.
    #[error("TLS configuration: {0}")]
    Config(String),
}

/// The client configuration every connection uses: the system's roots (if
/// any can be read) and every certificate in `ca_bundle`.
pub fn client_config(ca_bundle: Option<&Path>) -> Result<Arc<rustls::ClientConfig>, TlsError> {
    let mut roots = RootCertStore::empty();
    // A machine without a readable store still works with a bundle.
    let native = rustls_native_certs::load_native_certs();
    for error in &native.errors {
        tracing::debug!(%error, "a system certificate could not be loaded");
    }
    let (added, ignored) = roots.add_parsable_certificates(native.certs);
    tracing::debug!(added, ignored, "system certificates");
    if let Some(path) = ca_bundle {
        let bundle_err = |reason: String| TlsError::Bundle {
            path: path.to_path_buf(),
            reason,
        };
        let certs = CertificateDer::pem_file_iter(path)
            .map_err(|e| bundle_err(e.to_string()))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| bundle_err(e.to_string()))?;
        if certs.is_empty() {
            return Err(bundle_err("no PEM certificate in it".into()));
        }
        for cert in certs {
            roots
                .add(cert)
                .map_err(|e| bundle_err(format!("a certificate is not usable: {e}")))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bundle_without_certificates_is_refused_by_name() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("bundle.pem");
        std::fs::write(&path, "not a certificate\n").expect("write");
        let err = client_config(Some(&path)).expect_err("refused");
        assert!(err.to_string().contains("bundle.pem"), "{err}");
        let missing = dir.path().join("missing.pem");
        let err = client_config(Some(&missing)).expect_err("refused");
        assert!(err.to_string().contains("missing.pem"), "{err}");
        client_config(None).expect("the system store alone");
    }
}
