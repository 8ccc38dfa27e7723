//! The webhook server's TLS: a CA of its own and a serving certificate for the webhook Service,
//! made with rcgen, both valid [`VALID_YEARS`] years. The certificates (public) are recorded in
//! the state; the serving key lives only in the output directory (mode 0600). A recorded pair is
//! reused while it has more than [`RENEW_BEFORE_DAYS`] days left and its key is still there, so
//! re-rendering is stable.
//!
//! Rotation without a gap: when a new pair is made (close to expiry, key missing, other DNS
//! names), the CA it replaces stays in the webhooks' `caBundle` next to the new one for
//! [`PREVIOUS_CA_DAYS`] days (never past its own expiry). The API server then accepts both the
//! old certificate, which the running pods serve until the kubelet has updated the mounted Secret
//! and the controller reloaded it, and the new one; and since the webhook configurations are
//! applied before the Secret (`02-webhook.yaml`, `03-webhook-secret.yaml`), the new CA is trusted
//! before any pod can serve the new certificate. No webhook call is refused on the way.

use std::path::Path;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};

use crate::render::{NAMESPACE, WEBHOOK_SERVICE};

/// How long a new pair is valid, in years.
pub const VALID_YEARS: u32 = 10;
/// A recorded pair with fewer days left than this is made anew.
pub const RENEW_BEFORE_DAYS: i64 = 365;
/// How long a replaced CA stays in the `caBundle` after the rotation.
pub const PREVIOUS_CA_DAYS: i64 = 30;
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

/// The public record of the webhook certificates in the state's `patch` section (its model
/// lives with the section's, in `common::sections::patch`).
pub use common::sections::patch::WebhookCertificate as Record;

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

/// What this step reads of a recorded certificate.
pub trait CaBundle {
    /// The PEM certificates the webhooks' `caBundle` carries at `now`: the CA, and the one it
    /// replaced while that is kept.
    fn ca_bundle(&self, now: chrono::DateTime<chrono::Utc>) -> String;
    /// The replaced CA, while it is to be kept at `now`.
    fn previous_ca(&self, now: chrono::DateTime<chrono::Utc>) -> Option<&str>;
}

impl CaBundle for Record {
    fn ca_bundle(&self, now: chrono::DateTime<chrono::Utc>) -> String {
        let mut bundle = self.ca_pem.trim_end().to_owned();
        bundle.push('\n');
        if let Some(previous) = self.previous_ca(now) {
            bundle.push_str(previous.trim_end());
            bundle.push('\n');
        }
        bundle
    }

    fn previous_ca(&self, now: chrono::DateTime<chrono::Utc>) -> Option<&str> {
        let pem = self.previous_ca_pem.as_deref()?;
        let until =
            chrono::DateTime::parse_from_rfc3339(self.previous_ca_until.as_deref()?).ok()?;
        (now < until && not_after(pem).is_some_and(|t| now < t)).then_some(pem)
    }
}

/// When a PEM certificate expires.
fn not_after(pem: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    let der = parse_pem(pem)?;
    let (_, x509) = x509_parser::parse_x509_certificate(&der).ok()?;
    chrono::DateTime::from_timestamp(x509.validity().not_after.timestamp(), 0)
}

fn rfc3339(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// The recorded pair when it can still be used, else a new one whose `caBundle` keeps the
/// recorded CA for [`PREVIOUS_CA_DAYS`] days (see the module's documentation). `key_path` is
/// where the key is (or would be) kept; `now` is the current time.
pub fn reuse_or_make(
    recorded: Option<&Record>,
    key_path: &Path,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Pair, TlsError> {
    let Some(record) = recorded else {
        tracing::info!("making the webhook certificate and its CA");
        return make(now);
    };
    match check_recorded(record, key_path, now) {
        Ok(key_pem) => {
            tracing::info!(
                "reusing the webhook certificate (valid until {})",
                record.not_after
            );
            let mut record = Record {
                key_file: format!("{KEY_DIR}/{KEY_FILE}"),
                ..record.clone()
            };
            if record.previous_ca_pem.is_some() && record.previous_ca(now).is_none() {
                tracing::info!("the CA replaced earlier leaves the webhooks' caBundle");
                record.previous_ca_pem = None;
                record.previous_ca_until = None;
            }
            Ok(Pair {
                record,
                key_pem,
                fresh: false,
            })
        }
        Err(why) => {
            tracing::info!("making a new webhook certificate and CA: {why}");
            let mut pair = make(now)?;
            let old_ca = record.ca_pem.trim();
            if let Some(expires) = not_after(old_ca).filter(|t| now < *t)
                && old_ca != pair.record.ca_pem.trim()
            {
                let until = expires.min(now + chrono::Duration::days(PREVIOUS_CA_DAYS));
                tracing::info!(
                    "the webhooks' caBundle carries the previous CA as well until {}, so no webhook call is refused while the controller's pods pick up the new certificate",
                    rfc3339(until)
                );
                pair.record.previous_ca_pem = Some(format!("{old_ca}\n"));
                pair.record.previous_ca_until = Some(rfc3339(until));
            }
            Ok(pair)
        }
    }
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

/// When a pair made at `now` expires: [`VALID_YEARS`] years later, to the second.
pub fn expiry(now: chrono::DateTime<chrono::Utc>) -> chrono::DateTime<chrono::Utc> {
    let now = chrono::DateTime::from_timestamp(now.timestamp(), 0).unwrap_or(now);
    now.checked_add_months(chrono::Months::new(VALID_YEARS * 12))
        .unwrap_or(now + chrono::Duration::days(i64::from(VALID_YEARS) * 365))
}

/// A new CA and a serving certificate signed by it, valid [`VALID_YEARS`] years from `now`.
pub fn make(now: chrono::DateTime<chrono::Utc>) -> Result<Pair, TlsError> {
    let not_before = now - chrono::Duration::hours(1);
    let not_after = expiry(now);

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
            previous_ca_pem: None,
            previous_ca_until: None,
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

        let later = expiry(now) - chrono::Duration::days(RENEW_BEFORE_DAYS - 1);
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

    fn days_valid(pem: &str) -> (i64, chrono::DateTime<chrono::Utc>) {
        let der = parse_pem(pem).unwrap();
        let (_, x509) = x509_parser::parse_x509_certificate(&der).unwrap();
        let from = x509.validity().not_before.timestamp();
        let to = x509.validity().not_after.timestamp();
        (
            (to - from) / 86_400,
            chrono::DateTime::from_timestamp(to, 0).unwrap(),
        )
    }

    #[test]
    fn ca_and_serving_certificate_are_valid_ten_years() {
        let now = chrono::DateTime::parse_from_rfc3339("2026-12-02T17:00:00Z")
            .unwrap()
            .to_utc();
        let pair = make(now).unwrap();
        let (days, until) = days_valid(&pair.record.cert_pem);
        assert_eq!(until.to_rfc3339(), "2036-12-02T17:00:00+00:00");
        assert!(days >= 3652, "{days} days");
        assert_eq!(pair.record.not_after, "2036-12-02T17:00:00Z");
        let (_, ca_until) = days_valid(&pair.record.ca_pem);
        assert!(ca_until >= until);
        assert_eq!(pair.record.ca_bundle(now), pair.record.ca_pem);
    }

    #[test]
    fn a_rotation_keeps_the_old_ca_in_the_bundle_for_a_while() {
        let dir = tempfile::tempdir().unwrap();
        let key_path = dir.path().join("tls.key");
        let made = chrono::Utc::now() - chrono::Duration::days(9 * 365 + 200);
        let old = make(made).unwrap();
        std::fs::write(&key_path, &old.key_pem).unwrap();
        let now = chrono::Utc::now();
        // Fewer than RENEW_BEFORE_DAYS left: renewed, both CAs trusted.
        let renewed = reuse_or_make(Some(&old.record), &key_path, now).unwrap();
        assert!(renewed.fresh);
        let bundle = renewed.record.ca_bundle(now);
        assert!(bundle.starts_with(renewed.record.ca_pem.trim_end()));
        assert!(bundle.contains(old.record.ca_pem.trim_end()));
        assert_eq!(bundle.matches("BEGIN CERTIFICATE").count(), 2);
        // Reused the next day: still both; after PREVIOUS_CA_DAYS: the new CA alone.
        std::fs::write(&key_path, &renewed.key_pem).unwrap();
        let day = now + chrono::Duration::days(1);
        let next = reuse_or_make(Some(&renewed.record), &key_path, day).unwrap();
        assert!(!next.fresh);
        assert_eq!(next.record.ca_bundle(day), bundle);
        let month = now + chrono::Duration::days(PREVIOUS_CA_DAYS + 1);
        let settled = reuse_or_make(Some(&next.record), &key_path, month).unwrap();
        assert!(!settled.fresh);
        assert_eq!(settled.record.previous_ca_pem, None);
        assert_eq!(settled.record.ca_bundle(month), renewed.record.ca_pem);
        // An expired previous CA is never put in the bundle.
        let expired = make(chrono::Utc::now() - chrono::Duration::days(11 * 365)).unwrap();
        let fresh = reuse_or_make(Some(&expired.record), &key_path, now).unwrap();
        assert!(fresh.fresh && fresh.record.previous_ca_pem.is_none());
    }
}
