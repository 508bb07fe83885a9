//! A throwaway CA and a server certificate it signed, for the adapters'
//! TLS tests against real servers (rcgen, ring).

use std::io;
use std::path::{Path, PathBuf};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};

/// The PEM files [`TestCertificates::write`] made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestCertificates {
    /// The server's certificate, for `127.0.0.1` (an IP address SAN).
    pub certificate: PathBuf,
    /// Its private key.
    pub key: PathBuf,
    /// The CA that signed it.
    pub ca: PathBuf,
    /// The CA's certificate, as written to `ca`.
    pub ca_pem: Vec<u8>,
}

impl TestCertificates {
    /// Makes a fresh CA and a certificate for `127.0.0.1`, and writes them
    /// to `server.pem`, `server.key` and `ca.pem` in `dir` (created).
    ///
    /// # Errors
    ///
    /// The directory or a file could not be written; rcgen refused (never
    /// for these parameters).
    pub fn write(dir: &Path, name: &str) -> io::Result<Self> {
        let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(io::Error::other)?;
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(DnType::CommonName, format!("{name} test CA"));
        let ca_key = KeyPair::generate().map_err(io::Error::other)?;
        let ca_pem = ca.self_signed(&ca_key).map_err(io::Error::other)?.pem();
        let issuer = Issuer::new(ca, ca_key);
        let server =
            CertificateParams::new(vec!["127.0.0.1".to_owned()]).map_err(io::Error::other)?;
        let server_key = KeyPair::generate().map_err(io::Error::other)?;
        let server_pem = server
            .signed_by(&server_key, &issuer)
            .map_err(io::Error::other)?
            .pem();
        std::fs::create_dir_all(dir)?;
        let files = TestCertificates {
            certificate: dir.join("server.pem"),
            key: dir.join("server.key"),
            ca: dir.join("ca.pem"),
            ca_pem: ca_pem.into_bytes(),
        };
        std::fs::write(&files.certificate, server_pem)?;
        std::fs::write(&files.key, server_key.serialize_pem())?;
        std::fs::write(&files.ca, &files.ca_pem)?;
        Ok(files)
    }
}
