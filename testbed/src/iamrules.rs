//! Reusable [`AwsProxy`] rules for the IAM and STS calls moto 5.2.5 lacks or cannot answer the
//! way a test needs (moto answers HTTP 500 with `NotImplementedError` for the first two):
//!
//! - [`oidc_client_ids`]: `iam:AddClientIDToOpenIDConnectProvider` and
//!   `iam:RemoveClientIDFromOpenIDConnectProvider`, carried out the way IAM documents them (add
//!   the client id if missing, or remove it if there, change nothing else, idempotent)
//!   through the calls moto has: get, delete and create the provider again with the same URL,
//!   client ids plus the new one, thumbprints and tags.
//! - [`simulate_principal_policy`]: `iam:SimulatePrincipalPolicy` with the decisions the test
//!   picks ([`Simulation`]), or AccessDenied; the simulations asked for are recorded.
//! - [`caller_identity`]: `sts:GetCallerIdentity` with the caller ARN the test picks (an
//!   assumed-role session, which moto's fixed credentials cannot give).
//!
//! Every other request goes to moto unchanged, and the proxy records all of them
//! ([`AwsProxy::calls`]).

use std::sync::{Arc, Mutex};

use crate::awsproxy::{AwsProxy, AwsReply, AwsRequest, Verdict};

const IAM_XMLNS: &str = "https://iam.amazonaws.com/doc/2010-05-08/";
const STS_XMLNS: &str = "https://sts.amazonaws.com/doc/2011-06-15/";
const REQUEST_ID: &str = "eks-fa-iamrules";

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A `200 OK` query-protocol answer `<{action}Response>` holding `result`.
fn query_answer(action: &str, xmlns: &str, result: &str) -> AwsReply {
    AwsReply {
        status: 200,
        headers: vec![
            ("content-type".to_owned(), "text/xml".to_owned()),
            ("x-amzn-requestid".to_owned(), REQUEST_ID.to_owned()),
        ],
        body: format!(
            "<{action}Response xmlns=\"{xmlns}\">{result}\
             <ResponseMetadata><RequestId>{REQUEST_ID}</RequestId></ResponseMetadata>\
             </{action}Response>"
        )
        .into_bytes(),
    }
}

fn is_call(request: &AwsRequest, service: &str, action: &str) -> bool {
    request.service == service && request.action == action
}

/// An IAM client that talks to moto directly (not through the proxy, so its calls are not
/// recorded as the binary's).
fn moto_iam(endpoint: &str, region: &str) -> aws_sdk_iam::Client {
    let region = if region.is_empty() {
        "us-east-1"
    } else {
        region
    };
    let config = aws_sdk_iam::Config::builder()
        .behavior_version(aws_sdk_iam::config::BehaviorVersion::latest())
        .region(aws_sdk_iam::config::Region::new(region.to_owned()))
        .endpoint_url(endpoint)
        .credentials_provider(aws_credential_types::Credentials::new(
            "testing", "testing", None, None, "iamrules",
        ))
        .build();
    aws_sdk_iam::Client::from_conf(config)
}

/// Answers `iam:AddClientIDToOpenIDConnectProvider` and
/// `iam:RemoveClientIDFromOpenIDConnectProvider` by changing the provider in moto
/// (`moto_endpoint`) as IAM would: `NoSuchEntity` (404) for an unknown ARN, nothing done when
/// the client id is already there (add) or not there (remove).
pub fn oidc_client_ids(proxy: &AwsProxy, moto_endpoint: &str) {
    let endpoint = moto_endpoint.to_owned();
    proxy.async_rule(move |request| {
        let endpoint = endpoint.clone();
        async move {
            const ADD: &str = "AddClientIDToOpenIDConnectProvider";
            const REMOVE: &str = "RemoveClientIDFromOpenIDConnectProvider";
            let action = if is_call(&request, "iam", ADD) {
                ADD
            } else if is_call(&request, "iam", REMOVE) {
                REMOVE
            } else {
                return Verdict::Pass;
            };
            let arn = request
                .param("OpenIDConnectProviderArn")
                .unwrap_or_default();
            let client_id = request.param("ClientID").unwrap_or_default();
            let iam = moto_iam(&endpoint, &request.region);
            Verdict::Reply(
                match change_client_ids(&iam, &arn, &client_id, action == ADD).await {
                    Ok(()) => query_answer(action, IAM_XMLNS, ""),
                    Err(Refused::NoSuchEntity(message)) => {
                        AwsReply::error(&request, 404, "NoSuchEntity", &message)
                    }
                    Err(Refused::Moto(message)) => {
                        AwsReply::error(&request, 500, "ServiceFailure", &message)
                    }
                },
            )
        }
    });
}

enum Refused {
    NoSuchEntity(String),
    /// moto failed a call the rule made.
    Moto(String),
}

/// Adds (`add`) or removes the client id, through the calls moto has: get, delete and create the
/// provider again with the same URL, client ids, thumbprints and tags.
async fn change_client_ids(
    iam: &aws_sdk_iam::Client,
    arn: &str,
    client_id: &str,
    add: bool,
) -> Result<(), Refused> {
    let found = iam
        .get_open_id_connect_provider()
        .open_id_connect_provider_arn(arn)
        .send()
        .await
        .map_err(|_| {
            Refused::NoSuchEntity(format!("OpenIDConnect Provider not found for arn {arn}"))
        })?;
    let has = found.client_id_list().iter().any(|c| c == client_id);
    if has == add {
        return Ok(());
    }
    let mut client_ids: Vec<String> = found
        .client_id_list()
        .iter()
        .filter(|c| *c != client_id)
        .cloned()
        .collect();
    if add {
        client_ids.push(client_id.to_owned());
    }
    iam.delete_open_id_connect_provider()
        .open_id_connect_provider_arn(arn)
        .send()
        .await
        .map_err(|e| Refused::Moto(format!("moto did not delete {arn}: {e:?}")))?;
    let mut create = iam
        .create_open_id_connect_provider()
        .url(format!("https://{}", found.url().unwrap_or_default()))
        .set_client_id_list(Some(client_ids));
    if !found.thumbprint_list().is_empty() {
        create = create.set_thumbprint_list(Some(found.thumbprint_list().to_vec()));
    }
    if !found.tags().is_empty() {
        create = create.set_tags(Some(found.tags().to_vec()));
    }
    create
        .send()
        .await
        .map_err(|e| Refused::Moto(format!("moto did not create {arn} again: {e:?}")))?;
    Ok(())
}

/// Answers `sts:GetCallerIdentity` with `arn` as the caller (account 123456789012).
pub fn caller_identity(proxy: &AwsProxy, arn: &str) {
    let arn = arn.to_owned();
    proxy.rule(move |request| {
        if !is_call(request, "sts", "GetCallerIdentity") {
            return Verdict::Pass;
        }
        Verdict::Reply(caller_identity_answer(&arn))
    });
}

fn caller_identity_answer(arn: &str) -> AwsReply {
    query_answer(
        "GetCallerIdentity",
        STS_XMLNS,
        &format!(
            "<GetCallerIdentityResult><Arn>{arn}</Arn><UserId>AROAEXAMPLE:session</UserId>\
             <Account>123456789012</Account></GetCallerIdentityResult>"
        ),
    )
}

/// How `iam:SimulatePrincipalPolicy` is answered.
#[derive(Debug, Clone)]
pub enum Simulation {
    /// Every action allowed except `denied`; `iam:PassRole` hangs on `iam:PassedToService`.
    Decide { denied: Vec<String> },
    /// AccessDenied, as for a caller without `iam:SimulatePrincipalPolicy`.
    Refuse,
}

/// One simulation request: the principal and the actions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Simulated {
    pub policy_source_arn: String,
    pub actions: Vec<String>,
}

/// The simulations asked for, as [`simulate_principal_policy`] records them.
#[derive(Debug, Clone, Default)]
pub struct Simulations(Arc<Mutex<Vec<Simulated>>>);

impl Simulations {
    /// The simulations asked for so far, in order.
    pub fn asked(&self) -> Vec<Simulated> {
        lock(&self.0).clone()
    }
}

/// Answers `iam:SimulatePrincipalPolicy` as `simulation` says, recording each request.
pub fn simulate_principal_policy(proxy: &AwsProxy, simulation: Simulation) -> Simulations {
    let simulations = Simulations::default();
    let log = simulations.clone();
    proxy.rule(move |request| {
        if !is_call(request, "iam", "SimulatePrincipalPolicy") {
            return Verdict::Pass;
        }
        let actions = request.list_param("ActionNames.member");
        lock(&log.0).push(Simulated {
            policy_source_arn: request.param("PolicySourceArn").unwrap_or_default(),
            actions: actions.clone(),
        });
        Verdict::Reply(simulation_answer(request, &simulation, &actions))
    });
    simulations
}

fn simulation_answer(
    request: &AwsRequest,
    simulation: &Simulation,
    actions: &[String],
) -> AwsReply {
    let denied = match simulation {
        Simulation::Refuse => {
            return AwsReply::error(
                request,
                403,
                "AccessDenied",
                "not authorized to perform: iam:SimulatePrincipalPolicy",
            );
        }
        Simulation::Decide { denied } => denied,
    };
    let members: String = actions
        .iter()
        .map(|action| {
            let (decision, missing) = if denied.contains(action) {
                ("implicitDeny", "")
            } else if action == "iam:PassRole" {
                ("implicitDeny", "<member>iam:PassedToService</member>")
            } else {
                ("allowed", "")
            };
            format!(
                "<member><EvalActionName>{action}</EvalActionName>\
                 <EvalResourceName>*</EvalResourceName><EvalDecision>{decision}</EvalDecision>\
                 <MatchedStatements/><MissingContextValues>{missing}</MissingContextValues>\
                 </member>"
            )
        })
        .collect();
    query_answer(
        "SimulatePrincipalPolicy",
        IAM_XMLNS,
        &format!(
            "<SimulatePrincipalPolicyResult><IsTruncated>false</IsTruncated>\
             <EvaluationResults>{members}</EvaluationResults></SimulatePrincipalPolicyResult>"
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simulations_decide_per_action() {
        let request = AwsRequest::for_tests("iam", "SimulatePrincipalPolicy");
        let actions = ["ec2:CreateVpc".to_owned(), "iam:PassRole".to_owned()];
        let decided = simulation_answer(
            &request,
            &Simulation::Decide {
                denied: vec!["ec2:CreateVpc".into()],
            },
            &actions,
        );
        assert_eq!(decided.status, 200);
        let text = decided.text();
        assert!(text.contains(
            "<EvalActionName>ec2:CreateVpc</EvalActionName><EvalResourceName>*</EvalResourceName><EvalDecision>implicitDeny</EvalDecision>"
        ));
        assert!(text.contains(
            "<MissingContextValues><member>iam:PassedToService</member></MissingContextValues>"
        ));
        let refused = simulation_answer(&request, &Simulation::Refuse, &actions);
        assert_eq!(refused.status, 403);
        assert!(
            refused
                .text()
                .contains("<Code>AccessDenied</Code><Message>not authorized to perform: iam:SimulatePrincipalPolicy</Message>")
        );
    }

    #[test]
    fn the_caller_is_the_one_picked() {
        let text = caller_identity_answer("arn:aws:sts::123456789012:assumed-role/r/s").text();
        assert!(text.starts_with(
            "<GetCallerIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">"
        ));
        assert!(text.contains("<Arn>arn:aws:sts::123456789012:assumed-role/r/s</Arn>"));
    }
}
