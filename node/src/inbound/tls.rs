//! TLS for SMTP: certificates from files, or one self-signed certificate generated once for
//! the whole cluster and replicated, so every node behind the load balancer presents the same.

use std::path::Path;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::Context;
use hato_cluster::{ClusterHandle, ReadRequest, ReadResponse};
use hato_storage::Command;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

use crate::settings::{SelfSigned, TLS_SELF_SIGNED};

/// The current TLS acceptor (absent until a certificate is available).
#[derive(Default, Clone)]
pub struct TlsState {
    inner: Arc<RwLock<Option<TlsAcceptor>>>,
}

impl TlsState {
    pub fn acceptor(&self) -> Option<TlsAcceptor> {
        self.inner.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn set(&self, a: TlsAcceptor) {
        *self.inner.write().unwrap_or_else(|p| p.into_inner()) = Some(a);
    }

    /// Load a certificate chain and key from PEM files.
    pub fn load_files(&self, cert: &Path, key: &Path) -> anyhow::Result<()> {
        let certs = CertificateDer::pem_file_iter(cert)
            .with_context(|| format!("reading certificate {}", cert.display()))?
            .collect::<Result<Vec<_>, _>>()
            .with_context(|| format!("parsing certificate {}", cert.display()))?;
        let key = PrivateKeyDer::from_pem_file(key)
            .with_context(|| format!("reading private key {}", key.display()))?;
        self.set(acceptor(certs, key)?);
        Ok(())
    }

    fn load_pem(&self, s: &SelfSigned) -> anyhow::Result<()> {
        let certs = CertificateDer::pem_slice_iter(s.cert_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .context("parsing the replicated certificate")?;
        let key = PrivateKeyDer::from_pem_slice(s.key_pem.as_bytes())
            .context("parsing the replicated key")?;
        self.set(acceptor(certs, key)?);
        Ok(())
    }
}

fn acceptor(
    certs: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> anyhow::Result<TlsAcceptor> {
    let cfg = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .context("certificate and key do not match")?;
    Ok(TlsAcceptor::from(Arc::new(cfg)))
}

/// Generate a self-signed certificate for `hostname`.
pub fn generate(hostname: &str) -> anyhow::Result<SelfSigned> {
    let c = rcgen::generate_simple_self_signed(vec![hostname.to_string()])
        .context("generating a self-signed certificate")?;
    Ok(SelfSigned {
        cert_pem: c.cert.pem(),
        key_pem: c.signing_key.serialize_pem(),
    })
}

/// Keep trying until the cluster's self-signed certificate is loaded: use the replicated one,
/// or generate one and store it if none exists yet (first writer wins; everyone then loads the
/// winner).
pub async fn ensure_self_signed(cluster: ClusterHandle, hostname: String, state: TlsState) {
    loop {
        match try_self_signed(&cluster, &hostname, &state).await {
            Ok(()) => return,
            Err(e) => {
                tracing::info!(error = %e, "TLS certificate not available yet; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

async fn try_self_signed(
    cluster: &ClusterHandle,
    hostname: &str,
    state: &TlsState,
) -> anyhow::Result<()> {
    let read = || async {
        match cluster
            .read(ReadRequest::Setting {
                key: TLS_SELF_SIGNED.into(),
            })
            .await?
        {
            ReadResponse::Setting(v) => Ok::<_, anyhow::Error>(v),
            other => anyhow::bail!("unexpected answer {other:?}"),
        }
    };
    let stored = match read().await? {
        Some(v) => v,
        None => {
            let pair = generate(hostname)?;
            cluster
                .write(Command::PutSettingIfAbsent {
                    key: TLS_SELF_SIGNED.into(),
                    value: serde_json::to_string(&pair)?,
                })
                .await?;
            read()
                .await?
                .context("certificate missing right after it was stored")?
        }
    };
    let pair: SelfSigned =
        serde_json::from_str(&stored).context("decoding the replicated certificate")?;
    state.load_pem(&pair)?;
    tracing::info!("loaded the cluster's self-signed TLS certificate");
    Ok(())
}
