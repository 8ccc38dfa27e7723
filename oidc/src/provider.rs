//! The IAM calls on an OIDC identity provider, found by its ARN (never by listing).

use aws_sdk_iam::types::Tag;
use common::aws::AwsError;

use crate::Error;

/// IAM's error code for a provider that does not exist.
pub const NO_SUCH_ENTITY: &str = "NoSuchEntity";
/// IAM's error code for a provider that exists already.
pub const ENTITY_ALREADY_EXISTS: &str = "EntityAlreadyExists";

/// What IAM says of a provider.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Provider {
    /// The URL without `https://`, as IAM shows it.
    pub url: Option<String>,
    pub client_ids: Vec<String>,
    pub thumbprints: Vec<String>,
    pub tags: Vec<(String, String)>,
}

impl Provider {
    /// The value of its tag `key`.
    pub fn tag(&self, key: &str) -> Option<&str> {
        self.tags
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// `GetOpenIDConnectProvider`; `None` when it does not exist.
pub async fn get(iam: &aws_sdk_iam::Client, arn: &str) -> Result<Option<Provider>, Error> {
    let answer = match iam
        .get_open_id_connect_provider()
        .open_id_connect_provider_arn(arn)
        .send()
        .await
    {
        Ok(answer) => answer,
        Err(e) => {
            let source = AwsError::from(e);
            if source.is(NO_SUCH_ENTITY) {
                return Ok(None);
            }
            return Err(Error::GetOpenIDConnectProvider {
                arn: arn.to_owned(),
                source,
            });
        }
    };
    Ok(Some(Provider {
        url: answer.url().map(str::to_owned),
        client_ids: answer.client_id_list().to_vec(),
        thumbprints: answer.thumbprint_list().to_vec(),
        tags: answer
            .tags()
            .iter()
            .map(|t| (t.key().to_owned(), t.value().to_owned()))
            .collect(),
    }))
}

/// How a create ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Created {
    /// Made; the ARN IAM gave it.
    Made(String),
    /// Someone made it between our look and our create.
    AlreadyExists,
}

/// `CreateOpenIDConnectProvider` with the given client ids, thumbprints (none is allowed) and tags.
pub async fn create(
    iam: &aws_sdk_iam::Client,
    arn: &str,
    url: &str,
    client_ids: &[String],
    thumbprints: &[String],
    tags: &[(String, String)],
) -> Result<Created, Error> {
    let mut request = iam
        .create_open_id_connect_provider()
        .url(url)
        .set_client_id_list(Some(client_ids.to_vec()));
    if !thumbprints.is_empty() {
        request = request.set_thumbprint_list(Some(thumbprints.to_vec()));
    }
    for (key, value) in tags {
        let tag = Tag::builder()
            .key(key)
            .value(value)
            .build()
            .expect("key and value are set");
        request = request.tags(tag);
    }
    match request.send().await {
        Ok(answer) => Ok(Created::Made(
            answer
                .open_id_connect_provider_arn()
                .unwrap_or(arn)
                .to_owned(),
        )),
        Err(e) => {
            let source = AwsError::from(e);
            if source.is(ENTITY_ALREADY_EXISTS) {
                Ok(Created::AlreadyExists)
            } else {
                Err(Error::CreateOpenIDConnectProvider {
                    arn: arn.to_owned(),
                    source,
                })
            }
        }
    }
}

/// `AddClientIDToOpenIDConnectProvider`.
pub async fn add_client_id(
    iam: &aws_sdk_iam::Client,
    arn: &str,
    client_id: &str,
) -> Result<(), Error> {
    iam.add_client_id_to_open_id_connect_provider()
        .open_id_connect_provider_arn(arn)
        .client_id(client_id)
        .send()
        .await
        .map_err(|e| Error::AddClientIDToOpenIDConnectProvider {
            arn: arn.to_owned(),
            client_id: client_id.to_owned(),
            source: e.into(),
        })?;
    Ok(())
}

/// `RemoveClientIDFromOpenIDConnectProvider`; nothing to do when the provider is gone.
pub async fn remove_client_id(
    iam: &aws_sdk_iam::Client,
    arn: &str,
    client_id: &str,
) -> Result<(), Error> {
    match iam
        .remove_client_id_from_open_id_connect_provider()
        .open_id_connect_provider_arn(arn)
        .client_id(client_id)
        .send()
        .await
    {
        Ok(_) => Ok(()),
        Err(e) => {
            let source = AwsError::from(e);
            if source.is(NO_SUCH_ENTITY) {
                Ok(())
            } else {
                Err(Error::RemoveClientIDFromOpenIDConnectProvider {
                    arn: arn.to_owned(),
                    client_id: client_id.to_owned(),
                    source,
                })
            }
        }
    }
}

/// `DeleteOpenIDConnectProvider`; false when it did not exist.
pub async fn delete(iam: &aws_sdk_iam::Client, arn: &str) -> Result<bool, Error> {
    match iam
        .delete_open_id_connect_provider()
        .open_id_connect_provider_arn(arn)
        .send()
        .await
    {
        Ok(_) => Ok(true),
        Err(e) => {
            let source = AwsError::from(e);
            if source.is(NO_SUCH_ENTITY) {
                Ok(false)
            } else {
                Err(Error::DeleteOpenIDConnectProvider {
                    arn: arn.to_owned(),
                    source,
                })
            }
        }
    }
}
