//! The control plane's keys: a CA of the cluster's own, kube-apiserver's serving certificate
//! signed by it (for `127.0.0.1`, `localhost`, the `kubernetes` Service's names and address, and
//! [`super::PROXIED_NAME`], a name that resolves nowhere, reached only through a test's proxy),
//! and the service-account signing key pair.

use std::path::Path;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SanType,
};

/// The PEM files of a control plane.
#[derive(Debug, Clone)]
pub(crate) struct Pki {
    pub ca_pem: String,
    serving_pem: String,
    serving_key_pem: String,
    sa_key_pem: String,
    sa_public_pem: String,
}

fn io_error(e: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::other(e.to_string())
}

impl Pki {
    /// New keys (ECDSA P-256) and certificates.
    pub fn new() -> std::io::Result<Pki> {
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(io_error)?;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "kubernetes");
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().map_err(io_error)?)
            .map_err(io_error)?;

        let names = [
            super::PROXIED_NAME,
            "localhost",
            "kubernetes",
            "kubernetes.default",
            "kubernetes.default.svc",
            "kubernetes.default.svc.cluster.local",
        ];
        let mut serving =
            CertificateParams::new(names.map(str::to_owned).to_vec()).map_err(io_error)?;
        for ip in [[127, 0, 0, 1], [10, 100, 0, 1]] {
            serving
                .subject_alt_names
                .push(SanType::IpAddress(std::net::IpAddr::from(ip)));
        }
        serving
            .distinguished_name
            .push(DnType::CommonName, "kube-apiserver");
        serving.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let serving_key = KeyPair::generate().map_err(io_error)?;
        let serving_cert = serving.signed_by(&serving_key, &ca).map_err(io_error)?;
        let sa = KeyPair::generate().map_err(io_error)?;
        Ok(Pki {
            ca_pem: ca.pem(),
            serving_pem: serving_cert.pem(),
            serving_key_pem: serving_key.serialize_pem(),
            sa_key_pem: sa.serialize_pem(),
            sa_public_pem: sa.public_key_pem(),
        })
    }

    /// Writes `ca.crt`, `apiserver.crt`, `apiserver.key`, `sa.key` and `sa.pub` into `dir`.
    pub fn write(&self, dir: &Path) -> std::io::Result<()> {
        for (name, text) in [
            ("ca.crt", &self.ca_pem),
            ("apiserver.crt", &self.serving_pem),
            ("apiserver.key", &self.serving_key_pem),
            ("sa.key", &self.sa_key_pem),
            ("sa.pub", &self.sa_public_pem),
        ] {
            std::fs::write(dir.join(name), text)?;
        }
        Ok(())
    }
}
