//! Throwaway PKI and rustls configurations (ring provider only: mixing providers in one
//! binary makes rustls panic when it must pick a process-wide default).

use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::{ClientConfig, RootCertStore, ServerConfig};

use crate::error::Error;

/// A CA and one server certificate signed by it, in PEM (for Mosquitto) and DER (for rustls).
pub(crate) struct Pki {
    pub ca_pem: String,
    pub ca_der: CertificateDer<'static>,
    pub server_pem: String,
    pub server_der: CertificateDer<'static>,
    pub key_pem: String,
    pub key_der: Vec<u8>,
    /// A certificate signed by the same CA for [`OTHER_HOST`] only, and its key.
    pub other_der: CertificateDer<'static>,
    pub other_key_der: Vec<u8>,
}

fn tls_err(what: &str) -> impl FnOnce(rcgen::Error) -> Error + '_ {
    move |e| Error::Tls(format!("{what}: {e}"))
}

pub(crate) fn generate_pki() -> Result<Pki, Error> {
    let ca_key = KeyPair::generate().map_err(tls_err("generating the CA key"))?;
    let mut ca_params =
        CertificateParams::new(Vec::<String>::new()).map_err(tls_err("CA parameters"))?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "kepm-devagent throwaway CA");
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_cert = ca_params
        .self_signed(&ca_key)
        .map_err(tls_err("self-signing the CA"))?;
    let issuer = Issuer::new(ca_params, ca_key);

    // IP SANs matter: clients connect to 127.0.0.1 and verify the IP, not a name.
    let (server_pem, server_der, key_pem, key_der) = server_cert(
        &issuer,
        &["localhost", "127.0.0.1", "::1"],
        "kepm-devagent localhost",
    )?;
    let (_, other_der, _, other_key_der) = server_cert(
        &issuer,
        &[OTHER_HOST],
        "kepm-devagent certificate for another host",
    )?;

    Ok(Pki {
        ca_pem: ca_cert.pem(),
        ca_der: ca_cert.der().clone(),
        server_pem,
        server_der,
        key_pem,
        key_der,
        other_der,
        other_key_der,
    })
}

/// The one name in the certificate of [`crate::SettingsMode::OtherHostCert`].
pub(crate) const OTHER_HOST: &str = "kepm-devagent.other.invalid";

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

/// A client configuration that trusts exactly `ca` (and nothing else).
pub(crate) fn client_config(ca: &CertificateDer<'static>) -> Result<Arc<ClientConfig>, Error> {
    let mut roots = RootCertStore::empty();
    roots
        .add(ca.clone())
        .map_err(|e| Error::Tls(format!("adding the throwaway CA to a root store: {e}")))?;
    let cfg = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Tls(format!("rustls client protocol versions: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(cfg))
}

/// The HTTPS server's configurations: its own certificate, and the one for another host.
pub(crate) fn server_configs(pki: &Pki) -> Result<ServerTls, Error> {
    Ok(ServerTls {
        own: server_config(pki, &pki.server_der, &pki.key_der)?,
        other_host: server_config(pki, &pki.other_der, &pki.other_key_der)?,
    })
}

/// What the Plugin Settings endpoint answers TLS with (see [`server_configs`]).
pub(crate) struct ServerTls {
    pub own: Arc<ServerConfig>,
    pub other_host: Arc<ServerConfig>,
}

fn server_config(
    pki: &Pki,
    cert: &CertificateDer<'static>,
    key: &[u8],
) -> Result<Arc<ServerConfig>, Error> {
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.to_vec()));
    let cfg = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Tls(format!("rustls server protocol versions: {e}")))?
        .with_no_client_auth()
        .with_single_cert(vec![cert.clone(), pki.ca_der.clone()], key)
        .map_err(|e| Error::Tls(format!("loading the server certificate into rustls: {e}")))?;
    Ok(Arc::new(cfg))
}
