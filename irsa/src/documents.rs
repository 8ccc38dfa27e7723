//! Loading the inline policy documents: from files or https URLs (pinned by SHA-256 when asked),
//! each checked, all checked together, before anything else happens.

use crate::error::{Error, Usage};
use crate::policy::{self, Document, Source};

/// Reads and checks every document before anything else happens.
pub async fn load_documents(values: &[String], pins: &[String]) -> Result<Vec<Document>, Error> {
    let sources: Vec<Source> = values
        .iter()
        .map(|v| {
            Source::parse(v).map_err(|reason| Usage::PolicySource {
                value: v.clone(),
                reason,
            })
        })
        .collect::<Result<_, _>>()?;
    let urls = sources
        .iter()
        .filter(|s| matches!(s, Source::Url(_)))
        .count();
    if pins.len() != urls && !pins.is_empty() {
        return Err(Usage::ShaCount {
            given: pins.len(),
            urls,
        }
        .into());
    }
    let names = policy::names(&sources);
    let mut pins = pins.iter();
    let mut documents = Vec::new();
    for (source, name) in sources.into_iter().zip(names) {
        let text = match &source {
            Source::File(path) => {
                std::fs::read_to_string(path).map_err(|e| Usage::PolicySource {
                    value: path.display().to_string(),
                    reason: format!("cannot read it: {e}"),
                })?
            }
            Source::Url(url) => {
                let text = fetch(url).await?;
                if let Some(expected) = pins.next() {
                    let got = policy::sha256_hex(text.as_bytes());
                    if !got.eq_ignore_ascii_case(expected.trim()) {
                        return Err(Usage::ShaMismatch {
                            url: url.clone(),
                            expected: expected.clone(),
                            got,
                        }
                        .into());
                    }
                }
                text
            }
        };
        let json = policy::check(&text).map_err(|reason| Usage::PolicyDocument {
            source_name: source.to_string(),
            reason,
        })?;
        documents.push(Document {
            name,
            source,
            text: json.to_string(),
            sha256: policy::sha256_hex(text.as_bytes()),
            json,
        });
    }
    policy::check_total(&documents)?;
    Ok(documents)
}

/// The document at an https URL (30 seconds at most).
async fn fetch(url: &str) -> Result<String, Error> {
    let failed = |reason: String| Error::FetchPolicy {
        url: url.to_owned(),
        reason,
    };
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(30))
        .https_only(true)
        .build()
        .map_err(|e| failed(e.to_string()))?;
    let answer = client
        .get(url)
        .send()
        .await
        .map_err(|e| failed(common::step::error_chain(&e)))?;
    if !answer.status().is_success() {
        return Err(failed(format!("HTTP {}", answer.status())));
    }
    answer.text().await.map_err(|e| failed(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use common::StepFailure;
    use common::step::EXIT_USAGE;

    #[tokio::test]
    async fn documents_are_checked_before_anything() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("good.json");
        std::fs::write(&good, r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]}"#).unwrap();
        let bad = dir.path().join("bad.json");
        std::fs::write(&bad, r#"{"Statement":[]}"#).unwrap();
        let good_s = good.display().to_string();
        let docs = load_documents(std::slice::from_ref(&good_s), &[])
            .await
            .unwrap();
        assert_eq!(docs[0].name, "good");
        assert_eq!(docs[0].text, docs[0].json.to_string());
        let err = load_documents(&[bad.display().to_string()], &[])
            .await
            .unwrap_err();
        assert_eq!(err.exit_code(), EXIT_USAGE);
        assert!(err.to_string().contains("bad.json"), "{err}");
        let err = load_documents(&["http://example.com/p.json".into()], &[])
            .await
            .unwrap_err();
        assert!(err.to_string().contains("http:// URL is refused"), "{err}");
        let err = load_documents(&[good_s], &["abc".into()])
            .await
            .unwrap_err();
        assert!(matches!(
            err,
            Error::Usage(Usage::ShaCount { given: 1, urls: 0 })
        ));
        let err = load_documents(&["/no/such/file.json".into()], &[])
            .await
            .unwrap_err();
        assert!(err.to_string().contains("cannot read it"), "{err}");
    }
}
