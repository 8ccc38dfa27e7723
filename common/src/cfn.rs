//! CloudFormation stacks: describe, create, update, delete, wait, and the reasons of a failure.
//! Shared by the steps that own a stack (`eks-sg-stack`, `eks-cluster`).

use std::collections::BTreeMap;
use std::future::Future;
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
    pub tags: BTreeMap<String, String>,
}

impl Stack {
    /// True when the stack carries every tag of `spec` (ours, made from that spec).
    pub fn carries(&self, tags: &BTreeMap<String, String>) -> bool {
        tags.iter().all(|(k, v)| self.tags.get(k) == Some(v))
    }
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
        tags: found
            .tags()
            .iter()
            .filter_map(|t| Some((t.key()?.to_owned(), t.value()?.to_owned())))
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

/// Starts creating the stack; its id. The request carries a `ClientRequestToken`, which the
/// SDK sends again on its own retries; when a retry after a lost answer is told the stack
/// already exists (CloudFormation without the token, or moto), the stack found is ours when it
/// carries every tag of `spec` (the caller checked before that no such stack existed), and its
/// id is returned. A stack of that name without our tags keeps the error.
pub async fn create(cfn: &Client, spec: &Spec) -> Result<String, CfnError> {
    let sent = cfn
        .create_stack()
        .stack_name(&spec.name)
        .template_body(&spec.body)
        .set_parameters(Some(spec.parameters()))
        .set_tags(Some(spec.tags()))
        .client_request_token(crate::owner::client_token())
        .send()
        .await;
    match sent {
        Ok(answer) => Ok(answer.stack_id().unwrap_or(&spec.name).to_owned()),
        Err(e) => {
            let source = AwsError::from(e);
            if !crate::owner::is_already_exists(&source) {
                return Err(CfnError::CreateStack {
                    stack: spec.name.clone(),
                    source,
                });
            }
            match describe(cfn, &spec.name).await? {
                Some(found) if found.carries(&spec.tags) => {
                    tracing::info!(
                        "stack {} already exists and carries our tags: the answer to our CreateStack was lost; going on with it",
                        spec.name
                    );
                    Ok(found.id)
                }
                _ => Err(CfnError::CreateStack {
                    stack: spec.name.clone(),
                    source,
                }),
            }
        }
    }
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

/// The CloudFormation calls a delete makes (a trait so the retry logic is tested without AWS).
pub trait StackCalls {
    fn describe(&self, stack: &str) -> impl Future<Output = Result<Option<Stack>, CfnError>>;
    fn delete(&self, stack: &str) -> impl Future<Output = Result<(), CfnError>>;
    fn settle(
        &self,
        stack: &str,
        what: &str,
        timeout: Duration,
    ) -> impl Future<Output = Result<Option<Stack>, CfnError>>;
}

impl StackCalls for Client {
    async fn describe(&self, stack: &str) -> Result<Option<Stack>, CfnError> {
        describe(self, stack).await
    }
    async fn delete(&self, stack: &str) -> Result<(), CfnError> {
        delete(self, stack).await
    }
    async fn settle(
        &self,
        stack: &str,
        what: &str,
        timeout: Duration,
    ) -> Result<Option<Stack>, CfnError> {
        settle(self, stack, what, timeout).await
    }
}

/// How many times a stack that ends `DELETE_FAILED` is deleted (the first time included).
pub const DELETE_ATTEMPTS: u32 = 3;

/// Deletes the stack `id` (shown as `label`) and waits until it is gone: before every attempt
/// `ready` waits for what would block the delete (network interfaces still using the stack's
/// security group or VPC); a stack that ends `DELETE_FAILED` is deleted again, at most
/// `attempts` times in all. `Ok(None)` when the stack is gone (or never was), `Ok(Some(stack))`
/// when it is still `DELETE_FAILED` (or in another state a delete does not change) after the
/// last attempt.
pub async fn delete_with_retries<C, E, R, F>(
    calls: &C,
    id: &str,
    label: &str,
    timeout: Duration,
    attempts: u32,
    mut ready: R,
) -> Result<Option<Stack>, E>
where
    C: StackCalls,
    E: From<CfnError>,
    R: FnMut() -> F,
    F: Future<Output = Result<(), E>>,
{
    let attempts = attempts.max(1);
    let mut attempt = 1;
    loop {
        let Some(existing) = calls.describe(id).await? else {
            return Ok(None);
        };
        if existing.status != "DELETE_IN_PROGRESS" {
            if phase(&existing.status) == Phase::InProgress {
                tracing::info!(
                    "{label} is busy ({}); waiting for it to settle first",
                    existing.status
                );
                if calls
                    .settle(id, &format!("{label} to settle"), timeout)
                    .await?
                    .is_none()
                {
                    return Ok(None);
                }
            }
            ready().await?;
            if attempt == 1 {
                tracing::info!("deleting {label}");
            } else {
                tracing::info!("deleting {label} again (attempt {attempt} of {attempts})");
            }
            calls.delete(id).await?;
        }
        match calls
            .settle(id, &format!("{label} to be deleted"), timeout)
            .await?
        {
            None => return Ok(None),
            Some(left) if left.status == "DELETE_FAILED" && attempt < attempts => {
                tracing::warn!(
                    "{label} ended DELETE_FAILED (attempt {attempt} of {attempts}); waiting for what blocks it, then deleting it again"
                );
                attempt += 1;
            }
            Some(left) => return Ok(Some(left)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A CloudFormation that ends the first `fail` deletes DELETE_FAILED, and logs the calls.
    struct Fake {
        fail: std::cell::Cell<u32>,
        status: std::cell::RefCell<Option<String>>,
        log: std::cell::RefCell<Vec<String>>,
    }

    impl Fake {
        fn new(status: &str, fail: u32) -> Fake {
            Fake {
                fail: std::cell::Cell::new(fail),
                status: std::cell::RefCell::new(Some(status.to_owned())),
                log: std::cell::RefCell::default(),
            }
        }
        fn stack(&self) -> Option<Stack> {
            self.status.borrow().clone().map(|status| Stack {
                id: "id".into(),
                status,
                parameters: BTreeMap::new(),
                outputs: BTreeMap::new(),
                tags: BTreeMap::new(),
            })
        }
    }

    impl StackCalls for Fake {
        async fn describe(&self, _: &str) -> Result<Option<Stack>, CfnError> {
            Ok(self.stack())
        }
        async fn delete(&self, _: &str) -> Result<(), CfnError> {
            self.log.borrow_mut().push("delete".into());
            let failed = self.fail.get() > 0;
            self.fail.set(self.fail.get().saturating_sub(1));
            *self.status.borrow_mut() = failed.then(|| "DELETE_FAILED".to_owned());
            Ok(())
        }
        async fn settle(&self, _: &str, _: &str, _: Duration) -> Result<Option<Stack>, CfnError> {
            Ok(self.stack())
        }
    }

    async fn run(fake: &Fake, attempts: u32) -> Result<Option<Stack>, CfnError> {
        delete_with_retries(
            fake,
            "id",
            "stack s",
            Duration::from_secs(1),
            attempts,
            || {
                fake.log.borrow_mut().push("ready".into());
                async { Ok(()) }
            },
        )
        .await
    }

    #[tokio::test]
    async fn a_delete_failed_stack_is_deleted_again_after_waiting() {
        let fake = Fake::new("CREATE_COMPLETE", 1);
        assert_eq!(run(&fake, 3).await.unwrap(), None);
        assert_eq!(*fake.log.borrow(), ["ready", "delete", "ready", "delete"]);
    }

    #[tokio::test]
    async fn retries_are_bounded() {
        let fake = Fake::new("DELETE_FAILED", 5);
        let left = run(&fake, 3).await.unwrap().expect("still there");
        assert_eq!(left.status, "DELETE_FAILED");
        assert_eq!(
            fake.log.borrow().len(),
            6,
            "three attempts, each after a wait"
        );
    }

    #[tokio::test]
    async fn a_missing_stack_is_success_without_a_call() {
        let fake = Fake::new("CREATE_COMPLETE", 0);
        *fake.status.borrow_mut() = None;
        assert_eq!(run(&fake, 3).await.unwrap(), None);
        assert!(fake.log.borrow().is_empty());
    }

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

/// The stack calls against a CloudFormation client answered in-process (`aws-smithy-mocks`):
/// what a status means to `describe` and the waits, a create whose answer was lost, an update
/// with nothing to do, and a delete that ends `DELETE_FAILED` once.
#[cfg(test)]
mod fakes {
    use aws_sdk_cloudformation::operation::create_stack::CreateStackError;
    use aws_sdk_cloudformation::operation::delete_stack::DeleteStackOutput;
    use aws_sdk_cloudformation::operation::describe_stacks::{
        DescribeStacksError, DescribeStacksOutput,
    };
    use aws_sdk_cloudformation::operation::update_stack::UpdateStackError;
    use aws_sdk_cloudformation::types::{Output, StackStatus};
    use aws_smithy_mocks::{MockResponseInterceptor, Rule, RuleMode, mock};
    use aws_smithy_types::error::ErrorMetadata;

    use super::*;

    fn client(rules: &[&Rule]) -> Client {
        let mut mocks = MockResponseInterceptor::new().rule_mode(RuleMode::MatchAny);
        for rule in rules {
            mocks = mocks.with_rule(rule);
        }
        use aws_sdk_cloudformation::config::{BehaviorVersion, Credentials, Region};
        let config = aws_sdk_cloudformation::Config::builder()
            .behavior_version(BehaviorVersion::v2026_01_12())
            .region(Region::new("us-east-2"))
            .credentials_provider(Credentials::new("AKIDTEST", "secret", None, None, "test"))
            .http_client(aws_smithy_mocks::create_mock_http_client())
            .interceptor(mocks)
            .build();
        Client::from_conf(config)
    }

    fn meta(code: &str, message: &str) -> ErrorMetadata {
        ErrorMetadata::builder().code(code).message(message).build()
    }

    fn stack(status: StackStatus, tags: &[(&str, &str)]) -> DescribeStacksOutput {
        let mut found = aws_sdk_cloudformation::types::Stack::builder()
            .stack_name("s")
            .stack_id("arn:aws:cloudformation:us-east-2:1:stack/s/1")
            .stack_status(status)
            .outputs(
                Output::builder()
                    .output_key("SecurityGroupId")
                    .output_value("sg-1")
                    .build(),
            );
        for (k, v) in tags {
            found = found.tags(Tag::builder().key(*k).value(*v).build());
        }
        DescribeStacksOutput::builder()
            .stacks(found.build())
            .build()
    }

    fn gone() -> DescribeStacksError {
        DescribeStacksError::generic(meta("ValidationError", "Stack with id s does not exist"))
    }

    fn spec() -> Spec {
        Spec {
            name: "s".into(),
            body: "{}".into(),
            parameters: BTreeMap::new(),
            tags: BTreeMap::from([("eks-fargate-alb/cluster".to_owned(), "demo".to_owned())]),
        }
    }

    #[tokio::test]
    async fn describe_reads_a_stack_and_takes_missing_or_deleted_as_none() {
        let live = mock!(Client::describe_stacks)
            .match_requests(|r| r.stack_name() == Some("live"))
            .then_output(|| stack(StackStatus::UpdateComplete, &[("k", "v")]));
        let deleted = mock!(Client::describe_stacks)
            .match_requests(|r| r.stack_name() == Some("deleted"))
            .then_output(|| stack(StackStatus::DeleteComplete, &[]));
        let missing = mock!(Client::describe_stacks)
            .match_requests(|r| r.stack_name() == Some("missing"))
            .then_error(gone);
        let refused = mock!(Client::describe_stacks)
            .match_requests(|r| r.stack_name() == Some("refused"))
            .then_error(|| DescribeStacksError::generic(meta("AccessDenied", "not allowed")));
        let cfn = client(&[&live, &deleted, &missing, &refused]);
        let found = describe(&cfn, "live").await.unwrap().expect("the stack");
        assert_eq!(found.status, "UPDATE_COMPLETE");
        assert_eq!(found.outputs["SecurityGroupId"], "sg-1");
        assert!(found.carries(&BTreeMap::from([("k".to_owned(), "v".to_owned())])));
        assert_eq!(describe(&cfn, "deleted").await.unwrap(), None);
        assert_eq!(describe(&cfn, "missing").await.unwrap(), None);
        let err = describe(&cfn, "refused")
            .await
            .expect_err("not a missing stack");
        assert!(
            matches!(&err, CfnError::DescribeStacks { stack, source } if stack == "refused" && source.is("AccessDenied")),
            "{err:?}"
        );
    }

    /// `settle` polls while the status ends `_IN_PROGRESS` and returns the settled stack.
    #[tokio::test]
    async fn settle_waits_out_an_operation_in_progress() {
        let describe = mock!(Client::describe_stacks)
            .sequence()
            .output(|| stack(StackStatus::UpdateInProgress, &[]))
            .output(|| stack(StackStatus::UpdateCompleteCleanupInProgress, &[]))
            .output(|| stack(StackStatus::UpdateRollbackComplete, &[]))
            .build();
        let cfn = client(&[&describe]);
        let settled = settle(&cfn, "s", "s to settle", Duration::from_secs(60))
            .await
            .unwrap()
            .expect("still there");
        assert_eq!(settled.status, "UPDATE_ROLLBACK_COMPLETE");
        assert_eq!(describe.num_calls(), 3);
    }

    /// A create told "already exists" (its answer was lost, the SDK sent it again) goes on with
    /// the stack only when it carries every tag of ours; a stranger's keeps the error.
    #[tokio::test]
    async fn a_lost_create_answer_is_ours_only_by_our_tags() {
        let exists = || {
            CreateStackError::generic(meta("AlreadyExistsException", "Stack [s] already exists"))
        };
        let create = mock!(Client::create_stack)
            .match_requests(|r| {
                r.stack_name() == Some("s")
                    && r.client_request_token()
                        .is_some_and(|t| t.starts_with("eks-fa-"))
            })
            .then_error(exists);
        let ours = mock!(Client::describe_stacks).then_output(|| {
            stack(
                StackStatus::CreateInProgress,
                &[("eks-fargate-alb/cluster", "demo")],
            )
        });
        let cfn = client(&[&create, &ours]);
        assert_eq!(
            super::create(&cfn, &spec()).await.unwrap(),
            "arn:aws:cloudformation:us-east-2:1:stack/s/1"
        );

        let create = mock!(Client::create_stack).then_error(exists);
        let theirs = mock!(Client::describe_stacks).then_output(|| {
            stack(
                StackStatus::CreateComplete,
                &[("eks-fargate-alb/cluster", "other")],
            )
        });
        let cfn = client(&[&create, &theirs]);
        let err = super::create(&cfn, &spec()).await.expect_err("not ours");
        assert!(
            matches!(&err, CfnError::CreateStack { source, .. } if source.is("AlreadyExistsException")),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn an_update_with_nothing_to_do_is_no_change_and_other_errors_stay() {
        let nothing = mock!(Client::update_stack).then_error(|| {
            UpdateStackError::generic(meta("ValidationError", "No updates are to be performed."))
        });
        assert!(!update(&client(&[&nothing]), &spec()).await.unwrap());
        let invalid = mock!(Client::update_stack).then_error(|| {
            UpdateStackError::generic(meta("ValidationError", "Template format error"))
        });
        assert!(matches!(
            update(&client(&[&invalid]), &spec()).await,
            Err(CfnError::UpdateStack { .. })
        ));
    }

    /// Through the real client: the stack ends DELETE_FAILED once, is deleted again after the
    /// readiness wait, and is gone.
    #[tokio::test]
    async fn a_delete_failed_once_is_deleted_again_through_the_client() {
        let describe = mock!(Client::describe_stacks)
            .sequence()
            .output(|| stack(StackStatus::CreateComplete, &[]))
            .output(|| stack(StackStatus::DeleteInProgress, &[]))
            .output(|| stack(StackStatus::DeleteFailed, &[]))
            .times(2)
            .output(|| stack(StackStatus::DeleteInProgress, &[]))
            .error(gone)
            .build();
        let delete =
            mock!(Client::delete_stack).then_output(|| DeleteStackOutput::builder().build());
        let cfn = client(&[&describe, &delete]);
        let readied = std::cell::Cell::new(0);
        let left: Option<Stack> = delete_with_retries::<_, CfnError, _, _>(
            &cfn,
            "s",
            "stack s",
            Duration::from_secs(60),
            DELETE_ATTEMPTS,
            || {
                readied.set(readied.get() + 1);
                async { Ok(()) }
            },
        )
        .await
        .unwrap();
        assert_eq!(left, None);
        assert_eq!(delete.num_calls(), 2, "deleted again after DELETE_FAILED");
        assert_eq!(readied.get(), 2, "each attempt after the readiness wait");
    }
}
