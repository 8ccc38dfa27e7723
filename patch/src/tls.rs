//! The webhook server's TLS: a CA of its own and a serving certificate for the webhook Service,
//! made with rcgen. The certificates (public) are recorded in the state; the serving key lives
//! only in the output directory (mode 0600). A recorded pair is reused while it has more than
//! [`RENEW_BEFORE_DAYS`] days left and its key is still there, so re-rendering is stable.

use std::path::Path;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use serde::{Deserialize, Serialize};

use crate::render::{NAMESPACE, WEBHOOK_SERVICE};

/// How long a new pair is valid.
pub const VALID_DAYS: i64 = 365;
/// A recorded pair with fewer days left than this is made anew.
pub const RENEW_BEFORE_DAYS: i64 = 30;
/// Where the serving key is kept, inside the output directory.
pub const KEY_DIR: &str = ".webhook-tls";
pub const KEY_FILE: &str = "tls.key";

/// The DNS names the serving certificate is for.
pub fn dns_names() -> Vec<String> {
    vec![
        format!("{WEBHOOK_SERVICE}.{NAMESPACE}.svc"),
        format!("{WEBHOOK_SERVICE}.{NAMESPACE}.svc.cluster.local"),
    ]
}

/// The public record of the webhook certificates in the state's `patch` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Record {
    /// When the serving certificate expires (RFC 3339, UTC).
    pub not_after: String,
    pub dns_names: Vec<String>,
    pub ca_pem: String,
    pub cert_pem: String,
    /// The key file, relative to the output directory.
    pub key_file: String,
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// The pair in use and whether it was made now.
#[derive(Debug, Clone)]
pub struct Pair {
    pub record: Record,
    pub key_pem: String,
    pub fresh: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot make the webhook certificate: {0}")]
    Generate(#[from] rcgen::Error),
}

/// The recorded pair when it can still be used, else a new one. `key_path` is where the key is
/// (or would be) kept; `now` is the current time.
pub fn reuse_or_make(
    recorded: Option<&Record>,
    key_path: &Path,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Pair, TlsError> {
    if let Some(record) = recorded {
        match check_recorded(record, key_path, now) {
            Ok(key_pem) => {
                tracing::info!(
                    "reusing the webhook certificate (valid until {})",
                    record.not_after
                );
                return Ok(Pair {
                    record: Record {
                        key_file: format!("{KEY_DIR}/{KEY_FILE}"),
                        ..record.clone()
                    },
                    key_pem,
                    fresh: false,
                });
            }
            Err(why) => tracing::info!("making a new webhook certificate and CA: {why}"),
        }
    } else {
        tracing::info!("making the webhook certificate and its CA");
    }
    make(now)
}

fn check_recorded(
    record: &Record,
    key_path: &Path,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<String, String> {
    let cert = parse_pem(&record.cert_pem).ok_or("the recorded certificate does not parse")?;
    parse_pem(&record.ca_pem).ok_or("the recorded CA does not parse")?;
    let (_, x509) = x509_parser::parse_x509_certificate(&cert)
        .map_err(|e| format!("the recorded certificate does not parse: {e}"))?;
    let not_after = x509.validity().not_after.timestamp();
    let left = chrono::Duration::seconds(not_after - now.timestamp());
    if left < chrono::Duration::days(RENEW_BEFORE_DAYS) {
        return Err(format!(
            "the recorded one has {} days left (renewed below {RENEW_BEFORE_DAYS})",
            left.num_days()
        ));
    }
    if record.dns_names != dns_names() {
        return Err("the recorded one is for other DNS names".into());
    }
    let key_pem = match std::fs::read_to_string(key_path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(format!("its private key {} is missing", key_path.display()));
        }
        Err(e) => return Err(format!("cannot read {}: {e}", key_path.display())),
    };
    let key = KeyPair::from_pem(&key_pem)
        .map_err(|e| format!("{} is not a private key: {e}", key_path.display()))?;
    if key.public_key_raw() != x509.public_key().subject_public_key.data.as_ref() {
        return Err(format!(
            "{} does not belong to the recorded certificate",
            key_path.display()
        ));
    }
    Ok(key_pem)
}

fn parse_pem(text: &str) -> Option<Vec<u8>> {
    let text = text.trim();
    let body = text
        .strip_prefix("-----BEGIN CERTIFICATE-----")?
        .strip_suffix("-----END CERTIFICATE-----")?;
    let joined: String = body.split_whitespace().collect();
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(joined)
        .ok()
}

fn to_offset(t: chrono::DateTime<chrono::Utc>) -> time::OffsetDateTime {
    time::OffsetDateTime::from_unix_timestamp(t.timestamp())
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
}

/// A new CA and a serving certificate signed by it, valid [`VALID_DAYS`] from `now`.
pub fn make(now: chrono::DateTime<chrono::Utc>) -> Result<Pair, TlsError> {
    let not_before = now - chrono::Duration::hours(1);
    let not_after = now + chrono::Duration::days(VALID_DAYS);

    let ca_key = KeyPair::generate()?;
    let mut ca = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "eks-fargate-alb webhook CA");
    ca.distinguished_name = dn;
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    ca.not_before = to_offset(not_before);
    ca.not_after = to_offset(not_after + chrono::Duration::days(1));
    let ca_cert = ca.self_signed(&ca_key)?;
    let issuer = Issuer::new(ca, ca_key);

    let key = KeyPair::generate()?;
    let mut serving = CertificateParams::new(dns_names())?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, dns_names()[0].clone());
    serving.distinguished_name = dn;
    serving.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    serving.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    serving.use_authority_key_identifier_extension = true;
    serving.not_before = to_offset(not_before);
    serving.not_after = to_offset(not_after);
    let cert = serving.signed_by(&key, &issuer)?;

    Ok(Pair {
        record: Record {
            not_after: chrono::DateTime::from_timestamp(not_after.timestamp(), 0)
                .unwrap_or(not_after)
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            dns_names: dns_names(),
            ca_pem: ca_cert.pem(),
            cert_pem: cert.pem(),
            key_file: format!("{KEY_DIR}/{KEY_FILE}"),
            extra: serde_json::Map::new(),
        },
        key_pem: key.serialize_pem(),
        fresh: true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recorded_pair_is_reused_until_close_to_expiry() {
        let dir = tempfile::tempdir().unwrap();
        let key_path = dir.path().join("tls.key");
        let now = chrono::Utc::now();
        let first = make(now).unwrap();
        std::fs::write(&key_path, &first.key_pem).unwrap();

        let again = reuse_or_make(Some(&first.record), &key_path, now).unwrap();
        assert!(!again.fresh);
        assert_eq!(again.record, first.record);
        assert_eq!(again.key_pem, first.key_pem);

        let later = now + chrono::Duration::days(VALID_DAYS - RENEW_BEFORE_DAYS + 1);
        let renewed = reuse_or_make(Some(&first.record), &key_path, later).unwrap();
        assert!(renewed.fresh);
        assert_ne!(renewed.record.ca_pem, first.record.ca_pem);
    }

    #[test]
    fn a_foreign_key_means_a_new_pair() {
        let dir = tempfile::tempdir().unwrap();
        let key_path = dir.path().join("tls.key");
        let now = chrono::Utc::now();
        let first = make(now).unwrap();
        let other = make(now).unwrap();
        std::fs::write(&key_path, &other.key_pem).unwrap();
        assert!(
            reuse_or_make(Some(&first.record), &key_path, now)
                .unwrap()
                .fresh
        );
    }
}
