//! Throwaway PKI and rustls configurations (ring provider only: mixing providers in one
//! binary makes rustls panic when it must pick a process-wide default).

use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::WebPkiClientVerifier;
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, DistinguishedName, RootCertStore,
    ServerConfig, SignatureScheme,
};

use crate::error::Error;

/// A CA and the certificates it signed, in PEM (for Mosquitto) and DER (for rustls).
pub(crate) struct Pki {
    pub ca_pem: String,
    pub ca_der: CertificateDer<'static>,
    /// The agent's certificate (HTTPS API and the job-facing broker port): see
    /// [`AGENT_CERT_NAME`].
    pub server_pem: String,
    pub server_der: CertificateDer<'static>,
    pub key_pem: String,
    pub key_der: Vec<u8>,
    /// The capture listener's certificate (the devagent's own subscriber, which verifies
    /// 127.0.0.1 by IP): not the agent's, so it may name the address.
    pub capture_pem: String,
    pub capture_key_pem: String,
    /// A certificate for [`AGENT_CERT_NAME`] signed by another CA, and its key.
    pub other_der: CertificateDer<'static>,
    pub other_key_der: Vec<u8>,
    /// The Admin tier's CA (deployment tooling's client certificates), and the one client
    /// certificate it signed, for `serve --jobs-api` to hand to curl, PowerShell and `deploy`.
    pub admin_ca_pem: String,
    pub admin_ca_der: CertificateDer<'static>,
    pub admin_client_pem: String,
    pub admin_client_key_pem: String,
}

fn tls_err(what: &str) -> impl FnOnce(rcgen::Error) -> Error + '_ {
    move |e| Error::Tls(format!("{what}: {e}"))
}

/// A self-signed CA named `name`: its certificate and the issuer that signs with it.
fn ca(name: &str) -> Result<(rcgen::Certificate, Issuer<'static, KeyPair>), Error> {
    let ca_key = KeyPair::generate().map_err(tls_err("generating the CA key"))?;
    let mut ca_params =
        CertificateParams::new(Vec::<String>::new()).map_err(tls_err("CA parameters"))?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(DnType::CommonName, name);
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_cert = ca_params
        .self_signed(&ca_key)
        .map_err(tls_err("self-signing the CA"))?;
    Ok((ca_cert, Issuer::new(ca_params, ca_key)))
}

pub(crate) fn generate_pki() -> Result<Pki, Error> {
    let (ca_cert, issuer) = ca("kepm-devagent throwaway CA")?;

    // The agent's own certificate has the subject "Localhost" and no IP address: a client
    // that checks the name against 127.0.0.1 fails here as it would on an endpoint.
    let (server_pem, server_der, key_pem, key_der) =
        server_cert(&issuer, &[AGENT_CERT_NAME], AGENT_CERT_NAME)?;
    let (capture_pem, _, capture_key_pem, _) = server_cert(
        &issuer,
        &["localhost", "127.0.0.1", "::1"],
        "kepm-devagent capture listener",
    )?;
    let (_, other_issuer) = ca("kepm-devagent other CA (not in ca.pem)")?;
    let (_, other_der, _, other_key_der) =
        server_cert(&other_issuer, &[AGENT_CERT_NAME], AGENT_CERT_NAME)?;
    let (admin_ca, admin_issuer) = ca("kepm-devagent Admin-tier CA")?;
    let (admin_client_pem, admin_client_key_pem) = client_cert(&admin_issuer, ADMIN_CLIENT_NAME)?;

    Ok(Pki {
        ca_pem: ca_cert.pem(),
        ca_der: ca_cert.der().clone(),
        server_pem,
        server_der,
        key_pem,
        key_der,
        capture_pem,
        capture_key_pem,
        other_der,
        other_key_der,
        admin_ca_pem: admin_ca.pem(),
        admin_ca_der: admin_ca.der().clone(),
        admin_client_pem,
        admin_client_key_pem,
    })
}

/// The subject of the Admin client certificate `serve --jobs-api` writes.
pub const ADMIN_CLIENT_NAME: &str = "kepm-devagent deployment tooling";

/// A client certificate (ClientAuth) named `common_name`, signed by `issuer`: (PEM, key PEM).
fn client_cert(issuer: &Issuer<'_, KeyPair>, common_name: &str) -> Result<(String, String), Error> {
    let key = KeyPair::generate().map_err(tls_err("generating the client key"))?;
    let mut params = CertificateParams::new(Vec::<String>::new())
        .map_err(tls_err("client certificate parameters"))?;
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    let cert = params
        .signed_by(&key, issuer)
        .map_err(tls_err("signing the client certificate"))?;
    Ok((cert.pem(), key.serialize_pem()))
}

/// The agent's certificate names "Localhost" (its subject, as documented) and nothing else:
/// the vendor does not say which other names it carries, so none that is an IP address. It is
/// new at every start, as the agent's is at every service start.
pub const AGENT_CERT_NAME: &str = "Localhost";

/// A server certificate for `names`, signed by the CA: (PEM, DER, key PEM, key DER).
fn server_cert(
    issuer: &Issuer<'_, KeyPair>,
    names: &[&str],
    common_name: &str,
) -> Result<(String, CertificateDer<'static>, String, Vec<u8>), Error> {
    let key = KeyPair::generate().map_err(tls_err("generating the server key"))?;
    let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    let mut params =
        CertificateParams::new(names).map_err(tls_err("server certificate parameters"))?;
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    let cert = params
        .signed_by(&key, issuer)
        .map_err(tls_err("signing the server certificate"))?;
    Ok((
        cert.pem(),
        cert.der().clone(),
        key.serialize_pem(),
        key.serialize_der(),
    ))
}

pub(crate) fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A client configuration that trusts exactly `ca` (and nothing else), checking the chain and
/// dates but not the host name: the agent's certificate names "Localhost", not the address a
/// client dials, and the vendor's sample client does not check names either.
pub(crate) fn client_config(ca: &CertificateDer<'static>) -> Result<Arc<ClientConfig>, Error> {
    let mut roots = RootCertStore::empty();
    roots
        .add(ca.clone())
        .map_err(|e| Error::Tls(format!("adding the throwaway CA to a root store: {e}")))?;
    let inner = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider())
        .build()
        .map_err(|e| Error::Tls(format!("building the CA verifier: {e}")))?;
    let cfg = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Tls(format!("rustls client protocol versions: {e}")))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(NameBlind { inner }))
        .with_no_client_auth();
    Ok(Arc::new(cfg))
}

/// A client configuration trusting the CA in the PEM file `ca` as a job would: chain and
/// dates checked, not the name (see [`AGENT_CERT_NAME`]). For test publishers in other
/// processes than the devagent's, which only have its `ca.pem`.
pub fn client_config_from_ca_file(ca: &std::path::Path) -> Result<Arc<ClientConfig>, Error> {
    use rustls::pki_types::pem::PemObject;
    let cert = CertificateDer::from_pem_file(ca)
        .map_err(|e| Error::Tls(format!("reading the CA {}: {e}", ca.display())))?;
    client_config(&cert)
}

/// The devagent's own clients (capture, probes, tests) trust the CA as kepmlog does: every
/// check of the chain, none of the name. (kepmlog's core has the same rule for its users; the
/// devagent does not link the core, so the few lines are here too.)
#[derive(Debug)]
struct NameBlind {
    inner: Arc<WebPkiServerVerifier>,
}

impl ServerCertVerifier for NameBlind {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .inner
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
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

/// The HTTPS server's configurations: its own certificate (offering client authentication
/// for the Admin tier), and the one from another CA (settings mode `other-ca-cert`).
pub(crate) fn server_configs(pki: &Pki) -> Result<ServerTls, Error> {
    let mut roots = RootCertStore::empty();
    roots
        .add(pki.admin_ca_der.clone())
        .map_err(|e| Error::Tls(format!("adding the Admin CA to a root store: {e}")))?;
    let admin = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
        .allow_unauthenticated()
        .build()
        .map_err(|e| Error::Tls(format!("building the Admin client verifier: {e}")))?;
    let offer: Arc<dyn ClientCertVerifier> = Arc::new(OfferClientAuth {
        inner: Arc::clone(&admin),
    });
    Ok(ServerTls {
        own: server_config(
            vec![pki.server_der.clone(), pki.ca_der.clone()],
            &pki.key_der,
            Some(offer),
        )?,
        other_ca: server_config(vec![pki.other_der.clone()], &pki.other_key_der, None)?,
        admin,
    })
}

/// What the HTTPS endpoint answers TLS with (see [`server_configs`]).
pub(crate) struct ServerTls {
    pub own: Arc<ServerConfig>,
    pub other_ca: Arc<ServerConfig>,
    /// Checks a presented client certificate against the Admin CA (per request, see
    /// [`OfferClientAuth`]).
    pub admin: Arc<dyn ClientCertVerifier>,
}

impl ServerTls {
    /// Whether `chain` (the client's certificates, leaf first) is signed by the Admin CA.
    pub fn admin_chain_ok(&self, chain: &[CertificateDer<'static>]) -> Result<(), String> {
        let Some((leaf, rest)) = chain.split_first() else {
            return Err("no client certificate was presented".into());
        };
        self.admin
            .verify_client_cert(leaf, rest, UnixTime::now())
            .map(drop)
            .map_err(|e| {
                format!("the client certificate does not verify against the Admin CA: {e}")
            })
    }
}

/// Asks every client for a certificate but lets the handshake go on whatever it sends: the
/// Plugin tier and public endpoints need none, and a certificate from another CA must be
/// answered with a 403 naming the tier rather than a TLS alert no script can read. The
/// signature over the handshake is still checked (the client holds the certificate's key);
/// the chain is checked per request by [`ServerTls::admin_chain_ok`].
#[derive(Debug)]
struct OfferClientAuth {
    inner: Arc<dyn ClientCertVerifier>,
}

impl ClientCertVerifier for OfferClientAuth {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
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

fn server_config(
    chain: Vec<CertificateDer<'static>>,
    key: &[u8],
    client_auth: Option<Arc<dyn ClientCertVerifier>>,
) -> Result<Arc<ServerConfig>, Error> {
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.to_vec()));
    let builder = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Tls(format!("rustls server protocol versions: {e}")))?;
    let builder = match client_auth {
        Some(v) => builder.with_client_cert_verifier(v),
        None => builder.with_no_client_auth(),
    };
    let cfg = builder
        .with_single_cert(chain, key)
        .map_err(|e| Error::Tls(format!("loading the server certificate into rustls: {e}")))?;
    Ok(Arc::new(cfg))
}
