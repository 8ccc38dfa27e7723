//! The reconciliation's decision paths against an IAM client whose answers are given in-process
//! (`aws-smithy-mocks`): every call the code makes is recorded in order, and a call no rule
//! answers fails the test.

use std::sync::{Arc, Mutex};

use aws_sdk_iam::operation::attach_role_policy::AttachRolePolicyOutput;
use aws_sdk_iam::operation::create_role::{CreateRoleError, CreateRoleOutput};
use aws_sdk_iam::operation::delete_role_policy::DeleteRolePolicyOutput;
use aws_sdk_iam::operation::detach_role_policy::DetachRolePolicyOutput;
use aws_sdk_iam::operation::get_role::{GetRoleError, GetRoleOutput};
use aws_sdk_iam::operation::get_role_policy::GetRolePolicyOutput;
use aws_sdk_iam::operation::list_attached_role_policies::ListAttachedRolePoliciesOutput;
use aws_sdk_iam::operation::list_role_policies::ListRolePoliciesOutput;
use aws_sdk_iam::operation::put_role_policy::PutRolePolicyOutput;
use aws_sdk_iam::operation::tag_role::TagRoleOutput;
use aws_sdk_iam::operation::update_assume_role_policy::UpdateAssumeRolePolicyOutput;
use aws_sdk_iam::types::{AttachedPolicy, Role};
use aws_smithy_mocks::{MockResponseInterceptor, Rule, RuleMode, mock};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::BeforeSerializationInterceptorContextRef;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use aws_smithy_types::error::ErrorMetadata;
use serde_json::json;

use super::*;
use crate::owner::{CLUSTER_TAG, STEP_TAG};

const NAME: &str = "r";
const ARN: &str = "arn:aws:iam::123456789012:role/r";

/// The operations sent, in order (once per operation, whatever its attempts).
#[derive(Debug, Clone, Default)]
struct Calls(Arc<Mutex<Vec<String>>>);

impl Calls {
    fn sent(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }

    /// The calls that change something: anything but `Get*` and `List*`.
    fn mutating(&self) -> Vec<String> {
        self.sent()
            .into_iter()
            .filter(|c| !c.starts_with("Get") && !c.starts_with("List"))
            .collect()
    }
}

impl Intercept for Calls {
    fn name(&self) -> &'static str {
        "Calls"
    }

    fn read_before_serialization(
        &self,
        _context: &BeforeSerializationInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let operation = cfg.load::<Metadata>().expect("the operation's metadata");
        self.0.lock().unwrap().push(operation.name().to_owned());
        Ok(())
    }
}

/// A client answered by `rules` (any order); the SDK's standard retry with two attempts.
fn client(rules: &[&Rule]) -> (Client, Calls) {
    let mut mocks = MockResponseInterceptor::new().rule_mode(RuleMode::MatchAny);
    for rule in rules {
        mocks = mocks.with_rule(rule);
    }
    let calls = Calls::default();
    let config = aws_sdk_iam::Config::builder()
        .behavior_version(aws_sdk_iam::config::BehaviorVersion::v2026_01_12())
        .region(aws_sdk_iam::config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_iam::config::Credentials::new(
            "AKIDTEST", "secret", None, None, "test",
        ))
        .retry_config(
            aws_sdk_iam::config::retry::RetryConfig::standard()
                .with_max_attempts(2)
                .with_initial_backoff(std::time::Duration::from_millis(1)),
        )
        .http_client(aws_smithy_mocks::create_mock_http_client())
        .interceptor(mocks)
        .interceptor(calls.clone())
        .build();
    (Client::from_conf(config), calls)
}

fn error(code: &str) -> ErrorMetadata {
    ErrorMetadata::builder()
        .code(code)
        .message(format!("{code} (test)"))
        .build()
}

fn our_tags() -> BTreeMap<String, String> {
    let mut tags = crate::owner::tags("demo", "irsa");
    tags.insert("eks-fargate-alb/service-account".into(), "ns/sa".into());
    tags
}

fn trust() -> Value {
    json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRoleWithWebIdentity"}]})
}

fn role(trust: &Value, tags: &BTreeMap<String, String>) -> Role {
    let encoded = percent_encoding::utf8_percent_encode(
        &trust.to_string(),
        percent_encoding::NON_ALPHANUMERIC,
    )
    .to_string();
    Role::builder()
        .path("/")
        .role_name(NAME)
        .role_id("AROATEST")
        .arn(ARN)
        .create_date(aws_smithy_types::DateTime::from_secs(0))
        .assume_role_policy_document(encoded)
        .set_tags(Some(
            tags.iter()
                .map(|(k, v)| Tag::builder().key(k).value(v).build().unwrap())
                .collect(),
        ))
        .build()
        .unwrap()
}

fn inline(name: &str, json: Value) -> InlinePolicy {
    InlinePolicy {
        name: name.into(),
        text: json.to_string(),
        json,
        from: format!("{name}.json"),
    }
}

/// An irsa-like role: inline policies, managed policies exactly as wanted, retagged.
fn irsa_like() -> Desired {
    Desired {
        name: NAME.into(),
        trust: trust(),
        description: "test role".into(),
        tags: our_tags(),
        inline: Some(vec![inline("a", json!({"a": 1}))]),
        managed: BTreeSet::from(["arn:aws:iam::aws:policy/X".to_string()]),
        scope: Scope {
            retag: true,
            exclusive_managed: true,
            adopted_trust: true,
        },
    }
}

/// An eks-cluster-like role: no inline policies, its managed policy attached, nothing else
/// touched.
fn cluster_like() -> Desired {
    Desired {
        inline: None,
        scope: Scope {
            retag: false,
            exclusive_managed: false,
            adopted_trust: false,
        },
        ..irsa_like()
    }
}

fn proven(tags: &BTreeMap<String, String>) -> bool {
    tags.get(CLUSTER_TAG).map(String::as_str) == Some("demo")
        && tags.get(STEP_TAG).map(String::as_str) == Some("irsa")
}

const FIX: &str = "Pass --adopt, or name another role";

fn rule(recorded: bool, adopt: bool) -> Ownership<'static> {
    Ownership {
        proof: &proven,
        recorded,
        adopt,
        fix: FIX,
    }
}

/// What a step does: read, decide, plan, apply; recording the ARN when made, with the last call
/// sent before.
async fn reconcile(
    iam: &Client,
    calls: &Calls,
    desired: &Desired,
    rule: &Ownership<'_>,
    added: &Added,
) -> Result<(Owner, Changes, String, Option<String>), String> {
    let found = read(iam, &desired.name, desired.inline.is_some())
        .await
        .map_err(|e| e.to_string())?;
    let owner = decide(&desired.name, found.as_ref(), rule).map_err(|e| e.to_string())?;
    let changes = plan(found.as_ref(), desired, owner, added);
    let mut recorded = None;
    let arn = apply(
        iam,
        desired,
        &changes,
        found.map(|f| f.arn).unwrap_or_default(),
        |arn| recorded = Some(format!("{arn} after {}", calls.sent().join(", "))),
    )
    .await
    .map_err(|e| e.to_string())?;
    Ok((owner, changes, arn, recorded))
}

fn get_role(found: Option<Role>) -> Rule {
    match found {
        None => mock!(Client::get_role).then_error(|| GetRoleError::generic(error("NoSuchEntity"))),
        Some(role) => mock!(Client::get_role)
            .then_output(move || GetRoleOutput::builder().role(role.clone()).build()),
    }
}

fn attached(arns: &[&str]) -> Rule {
    let policies: Vec<AttachedPolicy> = arns
        .iter()
        .map(|a| AttachedPolicy::builder().policy_arn(*a).build())
        .collect();
    mock!(Client::list_attached_role_policies).then_output(move || {
        ListAttachedRolePoliciesOutput::builder()
            .set_attached_policies(Some(policies.clone()))
            .build()
    })
}

fn inline_listed(policies: &[(&str, Value)]) -> (Rule, Rule) {
    let names: Vec<String> = policies.iter().map(|(n, _)| n.to_string()).collect();
    let documents: BTreeMap<String, String> = policies
        .iter()
        .map(|(n, d)| (n.to_string(), d.to_string()))
        .collect();
    let list = mock!(Client::list_role_policies).then_output(move || {
        ListRolePoliciesOutput::builder()
            .set_policy_names(Some(names.clone()))
            .build()
            .unwrap()
    });
    let get = mock!(Client::get_role_policy).then_compute_output(move |input| {
        let name = input.policy_name().unwrap_or_default();
        GetRolePolicyOutput::builder()
            .role_name(NAME)
            .policy_name(name)
            .policy_document(documents[name].clone())
            .build()
            .unwrap()
    });
    (list, get)
}

#[test]
fn role_errors_name_the_action_policy_and_role() {
    let err = RoleError {
        action: "DetachRolePolicy",
        role: "r".into(),
        policy: Some("arn:aws:iam::aws:policy/P".into()),
        source: AwsError::from_parts(Some("AccessDenied"), "AccessDenied: no"),
    };
    assert_eq!(
        err.to_string(),
        "DetachRolePolicy arn:aws:iam::aws:policy/P of role r"
    );
}

#[tokio::test]
async fn an_absent_role_is_made_with_our_tags_then_given_its_policies() {
    let wanted = irsa_like();
    let create = mock!(Client::create_role)
        .match_requests(|r| {
            r.role_name() == Some(NAME)
                && r.description() == Some("test role")
                && r.assume_role_policy_document().map(parse_policy) == Some(trust())
                && r.tags().len() == 3
                && r.tags()
                    .iter()
                    .all(|t| our_tags().get(t.key()) == Some(&t.value().to_owned()))
        })
        .then_output(|| {
            CreateRoleOutput::builder()
                .role(role(&trust(), &our_tags()))
                .build()
        });
    let put = mock!(Client::put_role_policy)
        .match_requests(|r| {
            r.policy_name() == Some("a") && r.policy_document() == Some("{\"a\":1}")
        })
        .then_output(|| PutRolePolicyOutput::builder().build());
    let attach = mock!(Client::attach_role_policy)
        .match_requests(|r| r.policy_arn() == Some("arn:aws:iam::aws:policy/X"))
        .then_output(|| AttachRolePolicyOutput::builder().build());
    let (iam, calls) = client(&[&get_role(None), &create, &put, &attach]);

    let (owner, changes, arn, recorded) = reconcile(
        &iam,
        &calls,
        &wanted,
        &rule(false, false),
        &Added::default(),
    )
    .await
    .unwrap();
    assert_eq!(owner, Owner::Absent);
    assert!(changes.create);
    assert_eq!(arn, ARN);
    assert_eq!(
        recorded.unwrap(),
        format!("{ARN} after GetRole, CreateRole"),
        "recorded as soon as made"
    );
    assert_eq!(
        calls.sent(),
        ["GetRole", "CreateRole", "PutRolePolicy", "AttachRolePolicy"]
    );
}

#[tokio::test]
async fn a_role_of_ours_that_drifted_is_brought_back() {
    let drifted_trust = json!({"Version": "2012-10-17", "Statement": []});
    let old_tags = crate::owner::tags("demo", "irsa");
    let (list, get) = inline_listed(&[("a", json!({"a": 0})), ("old", json!({"o": 1}))]);
    let rules = [
        get_role(Some(role(&drifted_trust, &old_tags))),
        list,
        get,
        attached(&["arn:aws:iam::aws:policy/Y"]),
        mock!(Client::update_assume_role_policy)
            .match_requests(|r| r.policy_document().map(parse_policy) == Some(trust()))
            .then_output(|| UpdateAssumeRolePolicyOutput::builder().build()),
        mock!(Client::tag_role)
            .match_requests(|r| r.tags().len() == 3)
            .then_output(|| TagRoleOutput::builder().build()),
        mock!(Client::put_role_policy)
            .match_requests(|r| r.policy_name() == Some("a"))
            .then_output(|| PutRolePolicyOutput::builder().build()),
        mock!(Client::delete_role_policy)
            .match_requests(|r| r.policy_name() == Some("old"))
            .then_output(|| DeleteRolePolicyOutput::builder().build()),
        mock!(Client::attach_role_policy)
            .match_requests(|r| r.policy_arn() == Some("arn:aws:iam::aws:policy/X"))
            .then_output(|| AttachRolePolicyOutput::builder().build()),
        mock!(Client::detach_role_policy)
            .match_requests(|r| r.policy_arn() == Some("arn:aws:iam::aws:policy/Y"))
            .then_output(|| DetachRolePolicyOutput::builder().build()),
    ];

    // irsa's scope: everything is brought to the wanted role, in the order that leaves no
    // gap in permissions.
    let (iam, calls) = client(&rules.iter().collect::<Vec<_>>());
    let (owner, changes, arn, recorded) = reconcile(
        &iam,
        &calls,
        &irsa_like(),
        &rule(false, false),
        &Added::default(),
    )
    .await
    .unwrap();
    assert_eq!(owner, Owner::Ours, "proven by its tags");
    assert_eq!((arn.as_str(), recorded), (ARN, None));
    assert_eq!(changes.describe(NAME).len(), 6, "{changes:?}");
    assert_eq!(
        calls.sent(),
        [
            "GetRole",
            "ListRolePolicies",
            "GetRolePolicy",
            "GetRolePolicy",
            "ListAttachedRolePolicies",
            "UpdateAssumeRolePolicy",
            "TagRole",
            "PutRolePolicy",
            "DeleteRolePolicy",
            "AttachRolePolicy",
            "DetachRolePolicy"
        ]
    );

    // eks-cluster's scope: the trust and the missing attachment only; its inline policies
    // are not even read, its tags and other attachments left.
    let (iam, calls) = client(&rules.iter().collect::<Vec<_>>());
    reconcile(
        &iam,
        &calls,
        &cluster_like(),
        &rule(false, false),
        &Added::default(),
    )
    .await
    .unwrap();
    assert_eq!(
        calls.sent(),
        [
            "GetRole",
            "ListAttachedRolePolicies",
            "UpdateAssumeRolePolicy",
            "AttachRolePolicy"
        ]
    );
}

#[tokio::test]
async fn a_role_as_wanted_gets_no_mutating_call() {
    let (list, get) = inline_listed(&[("a", json!({"a": 1}))]);
    let (iam, calls) = client(&[
        &get_role(Some(role(&trust(), &our_tags()))),
        &list,
        &get,
        &attached(&["arn:aws:iam::aws:policy/X"]),
    ]);
    let (owner, changes, arn, _) = reconcile(
        &iam,
        &calls,
        &irsa_like(),
        &rule(false, false),
        &Added::default(),
    )
    .await
    .unwrap();
    assert_eq!((owner, arn.as_str()), (Owner::Ours, ARN));
    assert!(changes.is_empty(), "{changes:?}");
    assert!(calls.mutating().is_empty(), "{:?}", calls.sent());
}

#[tokio::test]
async fn a_role_not_ours_is_refused_before_any_change() {
    let theirs = BTreeMap::from([(CLUSTER_TAG.to_owned(), "other".to_owned())]);
    let (list, get) = inline_listed(&[("theirs", json!({"t": 1}))]);
    // Every mutating call is answered, so a call made would be seen, not a panic.
    let create = mock!(Client::create_role).then_output(|| CreateRoleOutput::builder().build());
    let update = mock!(Client::update_assume_role_policy)
        .then_output(|| UpdateAssumeRolePolicyOutput::builder().build());
    let tag = mock!(Client::tag_role).then_output(|| TagRoleOutput::builder().build());
    let put = mock!(Client::put_role_policy).then_output(|| PutRolePolicyOutput::builder().build());
    let delete =
        mock!(Client::delete_role_policy).then_output(|| DeleteRolePolicyOutput::builder().build());
    let attach =
        mock!(Client::attach_role_policy).then_output(|| AttachRolePolicyOutput::builder().build());
    let detach =
        mock!(Client::detach_role_policy).then_output(|| DetachRolePolicyOutput::builder().build());
    for desired in [irsa_like(), cluster_like()] {
        let (iam, calls) = client(&[
            &get_role(Some(role(&json!({}), &theirs))),
            &list,
            &get,
            &attached(&["arn:aws:iam::aws:policy/Theirs"]),
            &create,
            &update,
            &tag,
            &put,
            &delete,
            &attach,
            &detach,
        ]);
        let refused = reconcile(
            &iam,
            &calls,
            &desired,
            &rule(false, false),
            &Added::default(),
        )
        .await
        .unwrap_err();
        assert_eq!(
            refused,
            format!(
                "IAM role r is not ours: its {CLUSTER_TAG} tag names cluster other. Nothing was changed. {FIX}"
            )
        );
        assert!(calls.mutating().is_empty(), "{:?}", calls.sent());
    }
    for mutating in [&create, &update, &tag, &put, &delete, &attach, &detach] {
        assert_eq!(mutating.num_calls(), 0);
    }

    // The state's record makes it ours; --adopt (or a recorded adoption) takes it over.
    let found = role(&json!({}), &theirs);
    let found = Current {
        arn: ARN.into(),
        trust: json!({}),
        tags: found
            .tags()
            .iter()
            .map(|t| (t.key().to_owned(), t.value().to_owned()))
            .collect(),
        ..Current::default()
    };
    assert_eq!(
        decide(NAME, Some(&found), &rule(true, false)).unwrap(),
        Owner::Ours
    );
    assert_eq!(
        decide(NAME, Some(&found), &rule(false, true)).unwrap(),
        Owner::Adopted
    );
    assert_eq!(
        decide(NAME, None, &rule(false, false)).unwrap(),
        Owner::Absent
    );
}

#[tokio::test]
async fn already_exists_after_our_retried_create_is_ours_when_it_carries_our_tags() {
    // The first CreateRole's answer is lost (a 503 here); the SDK sends it again and is told
    // the role exists: ours, made by this run.
    let lost_then_exists = || {
        mock!(Client::create_role)
            .sequence()
            .http_status(503, None)
            .error(|| CreateRoleError::generic(error("EntityAlreadyExists")))
            .build()
    };
    let looked = || {
        mock!(Client::get_role)
            .sequence()
            .error(|| GetRoleError::generic(error("NoSuchEntity")))
            .output(|| {
                GetRoleOutput::builder()
                    .role(role(&trust(), &our_tags()))
                    .build()
            })
            .build()
    };
    let attach =
        mock!(Client::attach_role_policy).then_output(|| AttachRolePolicyOutput::builder().build());
    let create = lost_then_exists();
    let (iam, calls) = client(&[&looked(), &create, &attach]);
    let (owner, _, arn, recorded) = reconcile(
        &iam,
        &calls,
        &cluster_like(),
        &rule(false, false),
        &Added::default(),
    )
    .await
    .unwrap();
    assert_eq!(create.num_calls(), 2, "the SDK sent CreateRole again");
    assert_eq!(owner, Owner::Absent);
    assert_eq!(arn, ARN);
    assert_eq!(
        recorded.unwrap(),
        format!("{ARN} after GetRole, CreateRole, GetRole"),
        "recorded before the attachment"
    );
    assert_eq!(
        calls.sent(),
        ["GetRole", "CreateRole", "GetRole", "AttachRolePolicy"]
    );

    // A role of that name without every tag we create with is someone else's: the error
    // stands and nothing more is sent.
    let someone_elses = mock!(Client::get_role)
        .sequence()
        .error(|| GetRoleError::generic(error("NoSuchEntity")))
        .output(|| {
            GetRoleOutput::builder()
                .role(role(&trust(), &crate::owner::tags("demo", "irsa")))
                .build()
        })
        .build();
    let (iam, calls) = client(&[&someone_elses, &lost_then_exists(), &attach]);
    let failed = reconcile(
        &iam,
        &calls,
        &irsa_like(),
        &rule(false, false),
        &Added::default(),
    )
    .await
    .unwrap_err();
    assert_eq!(failed, "CreateRole r");
    assert_eq!(calls.sent(), ["GetRole", "CreateRole", "GetRole"]);
}

#[tokio::test]
async fn an_adopted_role_is_never_tagged_and_loses_only_what_we_added() {
    let theirs_trust = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Deny"}]});
    let (list, get) = inline_listed(&[
        ("theirs", json!({"t": 1})),
        ("ours-before", json!({"o": 1})),
    ]);
    let rules = [
        get_role(Some(role(&theirs_trust, &BTreeMap::new()))),
        list,
        get,
        attached(&[
            "arn:aws:iam::aws:policy/Theirs",
            "arn:aws:iam::aws:policy/OursBefore",
        ]),
        mock!(Client::update_assume_role_policy)
            .then_output(|| UpdateAssumeRolePolicyOutput::builder().build()),
        mock!(Client::put_role_policy)
            .match_requests(|r| r.policy_name() == Some("a"))
            .then_output(|| PutRolePolicyOutput::builder().build()),
        mock!(Client::delete_role_policy)
            .match_requests(|r| r.policy_name() == Some("ours-before"))
            .then_output(|| DeleteRolePolicyOutput::builder().build()),
        mock!(Client::attach_role_policy).then_output(|| AttachRolePolicyOutput::builder().build()),
        mock!(Client::detach_role_policy)
            .match_requests(|r| r.policy_arn() == Some("arn:aws:iam::aws:policy/OursBefore"))
            .then_output(|| DetachRolePolicyOutput::builder().build()),
    ];
    let added = Added {
        inline: BTreeSet::from(["ours-before".to_string()]),
        managed: BTreeSet::from(["arn:aws:iam::aws:policy/OursBefore".to_string()]),
    };

    // irsa: the trust for its service account, its policies; only what it added goes.
    let (iam, calls) = client(&rules.iter().collect::<Vec<_>>());
    let (owner, changes, _, recorded) =
        reconcile(&iam, &calls, &irsa_like(), &rule(false, true), &added)
            .await
            .unwrap();
    assert_eq!((owner, recorded), (Owner::Adopted, None));
    assert!(!changes.tag && !changes.trust_kept);
    assert_eq!(
        calls.mutating(),
        [
            "UpdateAssumeRolePolicy",
            "PutRolePolicy",
            "DeleteRolePolicy",
            "AttachRolePolicy",
            "DetachRolePolicy"
        ]
    );

    // eks-cluster: the trust is kept (the step warns), only the attachment is made.
    let (iam, calls) = client(&rules.iter().collect::<Vec<_>>());
    let (_, changes, _, _) = reconcile(&iam, &calls, &cluster_like(), &rule(false, true), &added)
        .await
        .unwrap();
    assert!(changes.trust_kept && !changes.update_trust);
    assert!(!changes.is_empty());
    assert_eq!(calls.mutating(), ["AttachRolePolicy"]);
}

#[test]
fn plans_follow_the_scope() {
    let wanted = irsa_like();
    let fresh = plan(None, &wanted, Owner::Absent, &Added::default());
    assert!(fresh.create && !fresh.update_trust && !fresh.tag);
    assert_eq!(fresh.put, ["a"]);
    assert_eq!(fresh.attach, ["arn:aws:iam::aws:policy/X"]);
    assert_eq!(fresh.describe(NAME).len(), 3);

    let legacy = Current {
        arn: ARN.into(),
        trust: trust(),
        tags: BTreeMap::from([(CLUSTER_TAG.to_owned(), "demo".to_owned())]),
        attached: BTreeSet::from(["arn:aws:iam::aws:policy/X".to_string()]),
        ..Current::default()
    };
    // eks-cluster leaves the tags of its older roles (cluster tag only) as they are.
    assert!(
        plan(
            Some(&legacy),
            &cluster_like(),
            Owner::Ours,
            &Added::default()
        )
        .is_empty()
    );
    let retagged = plan(Some(&legacy), &wanted, Owner::Ours, &Added::default());
    assert!(retagged.tag);
    assert_eq!(retagged.put, ["a"]);
}
