//! Trust for the agent's loopback HTTPS API and broker: a CA bundle when the operator gives
//! one; otherwise no verification, and only for loopback hosts (the agent's certificate is
//! self-signed and changes at every service restart, so it cannot be pinned).
//!
//! With a CA bundle and a loopback host the chain and validity are verified but not the host
//! name: the agent's certificate has the subject "Localhost" and the vendor's own sample turns
//! name checks off, so a name check against 127.0.0.1 would refuse the real agent. Off
//! loopback everything is verified.

use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};

/// True for `localhost`, `127.0.0.0/8` and `::1` (with or without brackets).
pub fn is_loopback_host(host: &str) -> bool {
    let h = host.trim_start_matches('[').trim_end_matches(']');
    if h.eq_ignore_ascii_case("localhost") {
        return true;
    }
    h.parse::<IpAddr>()
        .map(|ip| ip.is_loopback())
        .unwrap_or(false)
}

pub(crate) fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Reads every certificate of a PEM file; an unreadable file or one with no certificate is an
/// error naming the file.
pub(crate) fn load_ca_bundle(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let bytes = std::fs::read(path)
        .map_err(|e| format!("cannot read CA bundle {}: {e}", path.display()))?;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("CA bundle {} is not valid PEM: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "CA bundle {} holds no certificate (expected PEM \"BEGIN CERTIFICATE\" blocks)",
            path.display()
        ));
    }
    Ok(certs)
}

/// The rustls client configuration for the broker at `host`.
pub(crate) fn client_config(
    ca: Option<&[CertificateDer<'static>]>,
    host: &str,
) -> Result<Arc<ClientConfig>, String> {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?;
    let config = match ca {
        Some(certs) => {
            let mut roots = RootCertStore::empty();
            for cert in certs {
                roots
                    .add(cert.clone())
                    .map_err(|e| format!("CA bundle certificate rejected: {e}"))?;
            }
            if is_loopback_host(host) {
                let inner =
                    WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider())
                        .build()
                        .map_err(|e| format!("CA bundle unusable: {e}"))?;
                builder
                    .dangerous()
                    .with_custom_certificate_verifier(Arc::new(NameBlindVerifier { inner }))
                    .with_no_client_auth()
            } else {
                builder.with_root_certificates(roots).with_no_client_auth()
            }
        }
        None if is_loopback_host(host) => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(LoopbackVerifier {
                provider: provider(),
            }))
            .with_no_client_auth(),
        None => return Err(not_loopback_message(host)),
    };
    Ok(Arc::new(config))
}

pub(crate) fn not_loopback_message(host: &str) -> String {
    format!(
        "refusing to skip certificate verification for non-loopback host {host}: \
         configure a CA bundle (ca_bundle) that signs its certificate"
    )
}

/// Accepts any certificate chain (the agent's loopback certificate is self-signed and
/// rotates) but still checks that the handshake is signed by the key in that certificate.
#[derive(Debug)]
struct LoopbackVerifier {
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for LoopbackVerifier {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// Verifies the chain against the CA bundle and the validity dates, and everything about the
/// handshake, but accepts a certificate that does not name the loopback address dialled.
#[derive(Debug)]
struct NameBlindVerifier {
    inner: Arc<WebPkiServerVerifier>,
}

impl ServerCertVerifier for NameBlindVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        // webpki checks the name last, after the chain and the dates have verified.
        match self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        ) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts() {
        for h in [
            "127.0.0.1",
            "127.1.2.3",
            "localhost",
            "LOCALHOST",
            "::1",
            "[::1]",
        ] {
            assert!(is_loopback_host(h), "{h}");
        }
        for h in ["10.0.0.1", "example.com", "192.168.1.1", "", "::"] {
            assert!(!is_loopback_host(h), "{h}");
        }
    }

    #[test]
    fn no_skipping_verification_off_loopback() {
        let err = client_config(None, "broker.example.com").unwrap_err();
        assert!(err.contains("ca_bundle"), "{err}");
        assert!(client_config(None, "127.0.0.1").is_ok());
    }

    #[test]
    fn bad_ca_bundles_are_named() {
        let dir = std::env::temp_dir().join(format!("kepmlog-ca-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "not a pem").unwrap();
        let err = load_ca_bundle(&empty).unwrap_err();
        assert!(err.contains("no certificate"), "{err}");
        let err = load_ca_bundle(&dir.join("missing.pem")).unwrap_err();
        assert!(err.contains("cannot read"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
