//! CloudFormation stacks: describe, create, update, delete, wait, and the reasons of a failure.
//! Shared by the steps that own a stack (`eks-sg-stack`, `eks-cluster`).

use std::collections::BTreeMap;
use std::time::Duration;

use aws_sdk_cloudformation::Client;
use aws_sdk_cloudformation::types::{Parameter, Tag};

use crate::aws::AwsError;
use crate::wait::{Poll, TimedOut, wait_for};

/// A CloudFormation call that failed, or a wait that ran out.
#[derive(Debug, thiserror::Error)]
pub enum CfnError {
    #[error("DescribeStacks {stack}")]
    DescribeStacks { stack: String, source: AwsError },
    #[error("GetTemplate {stack}")]
    GetTemplate { stack: String, source: AwsError },
    #[error("CreateStack {stack}")]
    CreateStack { stack: String, source: AwsError },
    #[error("UpdateStack {stack}")]
    UpdateStack { stack: String, source: AwsError },
    #[error("DeleteStack {stack}")]
    DeleteStack { stack: String, source: AwsError },
    #[error(transparent)]
    Timeout(#[from] TimedOut),
}

/// A stack as `DescribeStacks` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stack {
    pub id: String,
    pub status: String,
    pub parameters: BTreeMap<String, String>,
    pub outputs: BTreeMap<String, String>,
}

/// Where a stack status stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// An operation is running.
    InProgress,
    /// Created or updated, usable.
    Complete,
    /// An update was rolled back: the stack is usable, as it was before.
    UpdateRolledBack,
    /// Left unusable by a failed create (or a failed delete): delete it and create it again.
    Broken,
    /// A failed update rollback: needs a person (continue the rollback, or delete).
    Stuck,
    /// Gone.
    Deleted,
}

/// The phase of a stack status.
pub fn phase(status: &str) -> Phase {
    match status {
        "DELETE_COMPLETE" => Phase::Deleted,
        "UPDATE_ROLLBACK_COMPLETE" | "IMPORT_ROLLBACK_COMPLETE" => Phase::UpdateRolledBack,
        "ROLLBACK_COMPLETE" | "ROLLBACK_FAILED" | "CREATE_FAILED" | "DELETE_FAILED"
        | "REVIEW_IN_PROGRESS" => Phase::Broken,
        "UPDATE_ROLLBACK_FAILED" | "IMPORT_ROLLBACK_FAILED" | "UPDATE_FAILED" => Phase::Stuck,
        s if s.ends_with("_IN_PROGRESS") => Phase::InProgress,
        s if s.ends_with("_COMPLETE") => Phase::Complete,
        _ => Phase::Stuck,
    }
}

/// The stack named (or with the id) `stack`; `None` when it does not exist or is deleted.
pub async fn describe(cfn: &Client, stack: &str) -> Result<Option<Stack>, CfnError> {
    let answer = match cfn.describe_stacks().stack_name(stack).send().await {
        Ok(answer) => answer,
        Err(e) => {
            let source = AwsError::from(e);
            if source.is("ValidationError") && source.text().contains("does not exist") {
                return Ok(None);
            }
            return Err(CfnError::DescribeStacks {
                stack: stack.to_owned(),
                source,
            });
        }
    };
    let Some(found) = answer.stacks().first() else {
        return Ok(None);
    };
    let status = found
        .stack_status()
        .map(|s| s.as_str().to_owned())
        .unwrap_or_default();
    if phase(&status) == Phase::Deleted {
        return Ok(None);
    }
    Ok(Some(Stack {
        id: found.stack_id().unwrap_or(stack).to_owned(),
        status,
        parameters: found
            .parameters()
            .iter()
            .filter_map(|p| {
                Some((
                    p.parameter_key()?.to_owned(),
                    p.parameter_value()?.to_owned(),
                ))
            })
            .collect(),
        outputs: found
            .outputs()
            .iter()
            .filter_map(|o| Some((o.output_key()?.to_owned(), o.output_value()?.to_owned())))
            .collect(),
    }))
}

/// The deployed template, parsed; `None` when it is not JSON (then it differs from ours).
pub async fn deployed_template(
    cfn: &Client,
    stack: &str,
) -> Result<Option<serde_json::Value>, CfnError> {
    let answer = cfn
        .get_template()
        .stack_name(stack)
        .send()
        .await
        .map_err(|e| CfnError::GetTemplate {
            stack: stack.to_owned(),
            source: e.into(),
        })?;
    Ok(answer
        .template_body()
        .and_then(|body| serde_json::from_str(body).ok()))
}

/// What a create or an update sends.
#[derive(Debug, Clone)]
pub struct Spec {
    pub name: String,
    pub body: String,
    pub parameters: BTreeMap<String, String>,
    pub tags: BTreeMap<String, String>,
}

impl Spec {
    fn parameters(&self) -> Vec<Parameter> {
        self.parameters
            .iter()
            .map(|(k, v)| {
                Parameter::builder()
                    .parameter_key(k)
                    .parameter_value(v)
                    .build()
            })
            .collect()
    }

    fn tags(&self) -> Vec<Tag> {
        self.tags
            .iter()
            .map(|(k, v)| Tag::builder().key(k).value(v).build())
            .collect()
    }
}

/// Starts creating the stack; its id.
pub async fn create(cfn: &Client, spec: &Spec) -> Result<String, CfnError> {
    let answer = cfn
        .create_stack()
        .stack_name(&spec.name)
        .template_body(&spec.body)
        .set_parameters(Some(spec.parameters()))
        .set_tags(Some(spec.tags()))
        .send()
        .await
        .map_err(|e| CfnError::CreateStack {
            stack: spec.name.clone(),
            source: e.into(),
        })?;
    Ok(answer.stack_id().unwrap_or(&spec.name).to_owned())
}

/// Starts updating the stack; false when CloudFormation found nothing to change.
pub async fn update(cfn: &Client, spec: &Spec) -> Result<bool, CfnError> {
    match cfn
        .update_stack()
        .stack_name(&spec.name)
        .template_body(&spec.body)
        .set_parameters(Some(spec.parameters()))
        .set_tags(Some(spec.tags()))
        .send()
        .await
    {
        Ok(_) => Ok(true),
        Err(e) => {
            let source = AwsError::from(e);
            if source.is("ValidationError")
                && source.text().contains("No updates are to be performed")
            {
                Ok(false)
            } else {
                Err(CfnError::UpdateStack {
                    stack: spec.name.clone(),
                    source,
                })
            }
        }
    }
}

/// Starts deleting the stack.
pub async fn delete(cfn: &Client, stack: &str) -> Result<(), CfnError> {
    cfn.delete_stack()
        .stack_name(stack)
        .send()
        .await
        .map_err(|e| CfnError::DeleteStack {
            stack: stack.to_owned(),
            source: e.into(),
        })?;
    Ok(())
}

/// Waits until no operation runs on the stack; the stack then, `None` once deleted.
pub async fn settle(
    cfn: &Client,
    stack: &str,
    what: &str,
    timeout: Duration,
) -> Result<Option<Stack>, CfnError> {
    wait_for(what, timeout, || async {
        Ok(match describe(cfn, stack).await? {
            Some(s) if phase(&s.status) == Phase::InProgress => Poll::Pending(s.status),
            settled => Poll::Ready(settled),
        })
    })
    .await
}

/// The reasons CloudFormation gave for what failed, newest first, one per line.
pub async fn failure_reasons(cfn: &Client, stack: &str) -> String {
    let events = match cfn.describe_stack_events().stack_name(stack).send().await {
        Ok(answer) => answer,
        Err(e) => return format!("(could not read the stack events: {})", AwsError::from(e)),
    };
    let lines: Vec<String> = events
        .stack_events()
        .iter()
        .filter(|e| {
            e.resource_status()
                .is_some_and(|s| s.as_str().ends_with("_FAILED"))
                || e.resource_status_reason().is_some_and(|r| !r.is_empty())
                    && e.resource_status()
                        .is_some_and(|s| s.as_str().contains("ROLLBACK"))
        })
        .take(10)
        .map(|e| {
            format!(
                "{} ({}): {}: {}",
                e.logical_resource_id().unwrap_or("?"),
                e.resource_type().unwrap_or("?"),
                e.resource_status().map(|s| s.as_str()).unwrap_or("?"),
                e.resource_status_reason().unwrap_or("no reason given")
            )
        })
        .collect();
    if lines.is_empty() {
        "CloudFormation gave no reason in the stack events".into()
    } else {
        lines.join("; ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases() {
        assert_eq!(phase("CREATE_COMPLETE"), Phase::Complete);
        assert_eq!(phase("UPDATE_COMPLETE"), Phase::Complete);
        assert_eq!(phase("IMPORT_COMPLETE"), Phase::Complete);
        assert_eq!(phase("CREATE_IN_PROGRESS"), Phase::InProgress);
        assert_eq!(
            phase("UPDATE_COMPLETE_CLEANUP_IN_PROGRESS"),
            Phase::InProgress
        );
        assert_eq!(phase("DELETE_IN_PROGRESS"), Phase::InProgress);
        assert_eq!(phase("ROLLBACK_COMPLETE"), Phase::Broken);
        assert_eq!(phase("DELETE_FAILED"), Phase::Broken);
        assert_eq!(phase("REVIEW_IN_PROGRESS"), Phase::Broken);
        assert_eq!(phase("UPDATE_ROLLBACK_COMPLETE"), Phase::UpdateRolledBack);
        assert_eq!(phase("UPDATE_ROLLBACK_FAILED"), Phase::Stuck);
        assert_eq!(phase("DELETE_COMPLETE"), Phase::Deleted);
        assert_eq!(phase("SOMETHING_NEW"), Phase::Stuck);
    }
}
