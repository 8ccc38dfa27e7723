//! From the caller's ARN (`sts:GetCallerIdentity`) to the IAM principal whose policies a
//! simulation evaluates.

/// What `iam:SimulatePrincipalPolicy` can be asked about for a caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// An IAM user, used as it is.
    User { arn: String },
    /// The role behind an assumed-role session. `arn` has no path (a session ARN does not carry
    /// it); `iam:GetRole` on `name` gives the real one.
    Role { arn: String, name: String },
    /// The account's root user: every action is allowed, nothing to simulate.
    Root { account: String },
    /// Anything a simulation cannot take (a federated user, a malformed ARN), and why.
    Unsupported { reason: String },
}

/// The parts of `arn:partition:service:region:account:resource`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Arn<'a> {
    partition: &'a str,
    service: &'a str,
    account: &'a str,
    resource: &'a str,
}

fn parse(arn: &str) -> Option<Arn<'_>> {
    let mut parts = arn.splitn(6, ':');
    if parts.next()? != "arn" {
        return None;
    }
    let partition = parts.next()?;
    let service = parts.next()?;
    let _region = parts.next()?;
    let account = parts.next()?;
    let resource = parts.next()?;
    (!partition.is_empty() && !service.is_empty() && !resource.is_empty()).then_some(Arn {
        partition,
        service,
        account,
        resource,
    })
}

/// The principal to simulate for the caller ARN: `arn:aws:sts::ACCT:assumed-role/ROLE/SESSION`
/// becomes the role `arn:aws:iam::ACCT:role/ROLE`; a user ARN is used as it is.
pub fn for_caller(caller_arn: &str) -> Principal {
    let Some(arn) = parse(caller_arn) else {
        return Principal::Unsupported {
            reason: format!("`{caller_arn}` is not an ARN"),
        };
    };
    match (arn.service, arn.resource) {
        ("sts", resource) if resource.starts_with("assumed-role/") => {
            let rest = &resource["assumed-role/".len()..];
            match rest.split_once('/') {
                Some((name, session)) if !name.is_empty() && !session.is_empty() => {
                    Principal::Role {
                        arn: format!("arn:{}:iam::{}:role/{name}", arn.partition, arn.account),
                        name: name.to_owned(),
                    }
                }
                _ => Principal::Unsupported {
                    reason: format!("`{caller_arn}` is an assumed-role ARN without a session"),
                },
            }
        }
        ("iam", "root") => Principal::Root {
            account: arn.account.to_owned(),
        },
        // `iam` for a real user; moto answers GetCallerIdentity with an `sts` user ARN.
        ("iam" | "sts", resource) if resource.starts_with("user/") => Principal::User {
            arn: caller_arn.to_owned(),
        },
        ("iam", resource) if resource.starts_with("role/") => {
            let name = resource.rsplit('/').next().unwrap_or_default().to_owned();
            Principal::Role {
                arn: caller_arn.to_owned(),
                name,
            }
        }
        ("sts", resource) if resource.starts_with("federated-user/") => Principal::Unsupported {
            reason: "a federated-user session has no IAM principal to simulate; check the policy \
                     passed to GetFederationToken and the user that called it"
                .into(),
        },
        _ => Principal::Unsupported {
            reason: format!("`{caller_arn}` is not an IAM user or role session"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assumed_role_sessions_become_their_role() {
        assert_eq!(
            for_caller("arn:aws:sts::123456789012:assumed-role/Admin/alice@example.com"),
            Principal::Role {
                arn: "arn:aws:iam::123456789012:role/Admin".into(),
                name: "Admin".into()
            }
        );
        assert_eq!(
            for_caller("arn:aws-cn:sts::210987654321:assumed-role/ci-deployer/gh-run-42"),
            Principal::Role {
                arn: "arn:aws-cn:iam::210987654321:role/ci-deployer".into(),
                name: "ci-deployer".into()
            }
        );
        assert!(matches!(
            for_caller("arn:aws:sts::123456789012:assumed-role/Admin"),
            Principal::Unsupported { .. }
        ));
    }

    #[test]
    fn users_are_used_as_they_are() {
        for arn in [
            "arn:aws:iam::123456789012:user/alice",
            "arn:aws:iam::123456789012:user/division/team/bob",
            "arn:aws:sts::123456789012:user/moto",
        ] {
            assert_eq!(for_caller(arn), Principal::User { arn: arn.into() });
        }
    }

    #[test]
    fn roots_federated_users_and_garbage() {
        assert_eq!(
            for_caller("arn:aws:iam::123456789012:root"),
            Principal::Root {
                account: "123456789012".into()
            }
        );
        let federated = for_caller("arn:aws:sts::123456789012:federated-user/carol");
        assert!(
            matches!(&federated, Principal::Unsupported { reason } if reason.contains("federated")),
            "{federated:?}"
        );
        for bad in ["", "alice", "arn:aws:iam::1", "arn:aws:s3:::bucket"] {
            assert!(
                matches!(for_caller(bad), Principal::Unsupported { .. }),
                "{bad}"
            );
        }
    }

    #[test]
    fn role_arns_are_kept_with_their_path() {
        assert_eq!(
            for_caller("arn:aws:iam::123456789012:role/x/deployer"),
            Principal::Role {
                arn: "arn:aws:iam::123456789012:role/x/deployer".into(),
                name: "deployer".into()
            }
        );
    }
}
