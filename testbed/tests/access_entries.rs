//! EKS access entries in the test bed (moto has none): the proxy answers the access-entry API
//! with EKS's fields and errors, `CreateCluster` gives the creator an admin entry as EKS does,
//! and the real API server, through the authenticator, lets in only callers with an entry.

use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sdk_eks::error::ProvideErrorMetadata;
use aws_sdk_eks::types::{
    AccessScope, AccessScopeType, AuthenticationMode, CreateAccessConfigRequest,
};
use k8s_openapi::api::core::v1::Namespace;
use kube::Api;
use kube::api::ListParams;
use testbed::awsproxy::AwsProxy;
use testbed::awsrules::{AccessEntries, CLUSTER_ADMIN_POLICY, ClusterConfig};
use testbed::controlplane::authn::Refusal;
use testbed::controlplane::{ControlPlane, Settings};
use testbed::{Moto, REGION};

/// What moto's STS says the default credentials (`testing`) are, as an IAM user.
const MOTO_USER: &str = "arn:aws:iam::123456789012:user/moto";
const VIEW_POLICY: &str = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSViewPolicy";

/// moto behind a proxy with the access entries (and the cluster settings EKS reports).
struct Bed {
    moto: Moto,
    proxy: AwsProxy,
    entries: AccessEntries,
}

impl Bed {
    fn start() -> Bed {
        let moto = Moto::start();
        let proxy = AwsProxy::in_front_of(&moto);
        let entries = AccessEntries::new(&moto.endpoint);
        entries.install(&proxy);
        ClusterConfig::new(0).install(&proxy, &moto.endpoint);
        Bed {
            moto,
            proxy,
            entries,
        }
    }

    /// An SDK configuration through the proxy, with `credentials` (None: moto's default ones).
    async fn config(&self, credentials: Option<Credentials>) -> aws_config::SdkConfig {
        let mut config = self.moto.sdk_config(REGION).await.into_builder();
        config.set_endpoint_url(Some(self.proxy.endpoint.clone()));
        if let Some(credentials) = credentials {
            config.set_credentials_provider(Some(
                aws_credential_types::provider::SharedCredentialsProvider::new(credentials),
            ));
        }
        config.build()
    }

    async fn eks(&self, credentials: Option<Credentials>) -> aws_sdk_eks::Client {
        aws_sdk_eks::Client::new(&self.config(credentials).await)
    }

    /// Makes the IAM role `name` (under `path`) in moto and returns its ARN.
    async fn role(&self, path: &str, name: &str) -> String {
        let iam = aws_sdk_iam::Client::new(&self.moto.sdk_config(REGION).await);
        let made = iam
            .create_role()
            .path(path)
            .role_name(name)
            .assume_role_policy_document(
                r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:root"},"Action":"sts:AssumeRole"}]}"#,
            )
            .send()
            .await
            .expect("CreateRole");
        made.role().unwrap().arn().to_owned()
    }

    /// Credentials of a session of the role `arn` (named `session`).
    async fn assume(&self, arn: &str, session: &str) -> Credentials {
        let sts = aws_sdk_sts::Client::new(&self.moto.sdk_config(REGION).await);
        let answer = sts
            .assume_role()
            .role_arn(arn)
            .role_session_name(session)
            .send()
            .await
            .expect("AssumeRole");
        let c = answer.credentials().unwrap();
        Credentials::new(
            c.access_key_id(),
            c.secret_access_key(),
            Some(c.session_token().to_owned()),
            None,
            "assumed",
        )
    }
}

/// Creates `name` through `eks` with the authentication mode `mode` (None: none sent).
async fn create_cluster(
    eks: &aws_sdk_eks::Client,
    name: &str,
    mode: Option<AuthenticationMode>,
    bootstrap: Option<bool>,
) -> Result<
    (),
    aws_sdk_eks::error::SdkError<aws_sdk_eks::operation::create_cluster::CreateClusterError>,
> {
    let mut create = eks
        .create_cluster()
        .name(name)
        .role_arn("arn:aws:iam::123456789012:role/eks-cluster-role")
        .resources_vpc_config(
            aws_sdk_eks::types::VpcConfigRequest::builder()
                .subnet_ids("subnet-12345678")
                .subnet_ids("subnet-87654321")
                .build(),
        );
    if mode.is_some() || bootstrap.is_some() {
        create = create.access_config(
            CreateAccessConfigRequest::builder()
                .set_authentication_mode(mode)
                .set_bootstrap_cluster_creator_admin_permissions(bootstrap)
                .build(),
        );
    }
    create.send().await.map(|_| ())
}

/// The code and HTTP status of an SDK error.
fn code_of<E: ProvideErrorMetadata>(error: &aws_sdk_eks::error::SdkError<E>) -> (String, u16) {
    let status = error
        .raw_response()
        .map(|r| r.status().as_u16())
        .unwrap_or(0);
    (error.code().unwrap_or("none").to_owned(), status)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn creating_a_cluster_gives_its_creator_an_admin_entry() {
    let bed = Bed::start();
    let eks = bed.eks(None).await;
    create_cluster(&eks, "api", Some(AuthenticationMode::ApiAndConfigMap), None)
        .await
        .expect("CreateCluster");

    let listed = eks
        .list_access_entries()
        .cluster_name("api")
        .send()
        .await
        .expect("ListAccessEntries");
    assert_eq!(listed.access_entries(), [MOTO_USER]);
    let described = eks
        .describe_access_entry()
        .cluster_name("api")
        .principal_arn(MOTO_USER)
        .send()
        .await
        .expect("DescribeAccessEntry");
    let entry = described.access_entry().unwrap();
    assert_eq!(entry.cluster_name(), Some("api"));
    assert_eq!(entry.username(), Some(MOTO_USER));
    assert_eq!(entry.r#type(), Some("STANDARD"));
    assert!(entry.kubernetes_groups().is_empty());
    assert!(entry.created_at().is_some());
    let entry_arn = entry.access_entry_arn().unwrap();
    assert!(
        entry_arn.starts_with(
            "arn:aws:eks:us-east-2:123456789012:access-entry/api/user/123456789012/moto/"
        ),
        "{entry_arn}"
    );
    let policies = eks
        .list_associated_access_policies()
        .cluster_name("api")
        .principal_arn(MOTO_USER)
        .send()
        .await
        .expect("ListAssociatedAccessPolicies");
    let [admin] = policies.associated_access_policies() else {
        panic!("{policies:?}");
    };
    assert_eq!(admin.policy_arn(), Some(CLUSTER_ADMIN_POLICY));
    assert_eq!(
        admin.access_scope().and_then(|s| s.r#type()),
        Some(&AccessScopeType::Cluster)
    );
    let cluster = eks.describe_cluster().name("api").send().await.unwrap();
    let access = cluster.cluster().unwrap().access_config().unwrap();
    assert_eq!(
        access.authentication_mode(),
        Some(&AuthenticationMode::ApiAndConfigMap)
    );
    assert_eq!(
        access.bootstrap_cluster_creator_admin_permissions(),
        Some(true)
    );
    let found = bed.entries.lookup(REGION, "api", MOTO_USER).unwrap();
    assert!(found.admin);
    assert_eq!(
        bed.entries.creator(REGION, "api").as_deref(),
        Some(MOTO_USER)
    );

    // A creator that is an assumed role: the entry is the role's (with its path), the username
    // the session's template.
    let builder = bed.role("/ops/", "builder").await;
    assert_eq!(builder, "arn:aws:iam::123456789012:role/ops/builder");
    let as_builder = bed.eks(Some(bed.assume(&builder, "ci").await)).await;
    create_cluster(&as_builder, "by-role", Some(AuthenticationMode::Api), None)
        .await
        .expect("CreateCluster as a role");
    let listed = eks
        .list_access_entries()
        .cluster_name("by-role")
        .send()
        .await
        .unwrap();
    assert_eq!(listed.access_entries(), [builder.as_str()]);
    let entry = eks
        .describe_access_entry()
        .cluster_name("by-role")
        .principal_arn(&builder)
        .send()
        .await
        .unwrap();
    assert_eq!(
        entry.access_entry().unwrap().username(),
        Some("arn:aws:sts::123456789012:assumed-role/builder/{{SessionName}}")
    );
    let session = "arn:aws:sts::123456789012:assumed-role/builder/ci";
    let found = bed.entries.lookup(REGION, "by-role", session).unwrap();
    assert_eq!(found.username, session);
    assert!(found.admin);
    assert!(bed.entries.lookup(REGION, "by-role", MOTO_USER).is_none());

    // Without the bootstrap, no entry: the creator has no access.
    create_cluster(
        &eks,
        "no-bootstrap",
        Some(AuthenticationMode::Api),
        Some(false),
    )
    .await
    .unwrap();
    let listed = eks
        .list_access_entries()
        .cluster_name("no-bootstrap")
        .send()
        .await
        .unwrap();
    assert!(listed.access_entries().is_empty());
    assert!(
        bed.entries
            .lookup(REGION, "no-bootstrap", MOTO_USER)
            .is_none()
    );

    // The API's default mode is CONFIG_MAP: no access-entry calls, the creator an admin without
    // an entry.
    create_cluster(&eks, "legacy", None, None).await.unwrap();
    let refused = eks
        .list_access_entries()
        .cluster_name("legacy")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code_of(&refused), ("InvalidRequestException".into(), 400));
    assert!(
        refused
            .into_service_error()
            .to_string()
            .contains("authentication mode must be set to one of [API, API_AND_CONFIG_MAP]")
    );
    let creator = bed.entries.lookup(REGION, "legacy", MOTO_USER).unwrap();
    assert!(creator.admin);
    assert_eq!(creator.username, "kubernetes-admin");
    assert!(bed.entries.entries(REGION, "legacy").is_empty());

    // CONFIG_MAP without the bootstrap is refused before moto makes anything.
    let refused = create_cluster(
        &eks,
        "locked-out",
        Some(AuthenticationMode::ConfigMap),
        Some(false),
    )
    .await
    .unwrap_err();
    assert_eq!(code_of(&refused), ("InvalidParameterException".into(), 400));
    let gone = eks
        .describe_cluster()
        .name("locked-out")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code_of(&gone).0, "ResourceNotFoundException");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_entries_round_trip_with_eks_s_errors() {
    let bed = Bed::start();
    let eks = bed.eks(None).await;
    create_cluster(&eks, "demo", Some(AuthenticationMode::Api), None)
        .await
        .unwrap();
    let deployer = bed.role("/", "deployer").await;

    let made = eks
        .create_access_entry()
        .cluster_name("demo")
        .principal_arn(&deployer)
        .kubernetes_groups("readers")
        .tags("owner", "tests")
        .send()
        .await
        .expect("CreateAccessEntry");
    let entry = made.access_entry().unwrap();
    assert_eq!(entry.principal_arn(), Some(deployer.as_str()));
    assert_eq!(entry.kubernetes_groups(), ["readers"]);
    assert_eq!(
        entry.username(),
        Some("arn:aws:sts::123456789012:assumed-role/deployer/{{SessionName}}")
    );
    assert_eq!(
        entry
            .tags()
            .and_then(|t| t.get("owner"))
            .map(String::as_str),
        Some("tests")
    );

    // The same principal again, the creator's too: in use.
    for principal in [deployer.as_str(), MOTO_USER] {
        let again = eks
            .create_access_entry()
            .cluster_name("demo")
            .principal_arn(principal)
            .send()
            .await
            .unwrap_err();
        assert_eq!(code_of(&again), ("ResourceInUseException".into(), 409));
        assert!(
            again
                .into_service_error()
                .to_string()
                .contains("already in use on this cluster"),
            "{principal}"
        );
    }
    // A session, a role IAM does not have, a role under another path: invalid principals.
    for principal in [
        "arn:aws:sts::123456789012:assumed-role/deployer/ci",
        "arn:aws:iam::123456789012:role/nobody",
        "arn:aws:iam::123456789012:role/elsewhere/deployer",
    ] {
        let refused = eks
            .create_access_entry()
            .cluster_name("demo")
            .principal_arn(principal)
            .send()
            .await
            .unwrap_err();
        assert_eq!(
            code_of(&refused),
            ("InvalidParameterException".into(), 400),
            "{principal}"
        );
    }
    // A cluster that does not exist.
    let missing = eks
        .list_access_entries()
        .cluster_name("nowhere")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code_of(&missing), ("ResourceNotFoundException".into(), 404));

    // Policies: a namespace scope needs namespaces; associating again replaces the scope.
    let no_namespaces = eks
        .associate_access_policy()
        .cluster_name("demo")
        .principal_arn(&deployer)
        .policy_arn(VIEW_POLICY)
        .access_scope(
            AccessScope::builder()
                .r#type(AccessScopeType::Namespace)
                .build(),
        )
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        code_of(&no_namespaces),
        ("InvalidParameterException".into(), 400)
    );
    for namespaces in [vec!["game"], vec!["game", "tools"]] {
        let associated = eks
            .associate_access_policy()
            .cluster_name("demo")
            .principal_arn(&deployer)
            .policy_arn(VIEW_POLICY)
            .access_scope(
                AccessScope::builder()
                    .r#type(AccessScopeType::Namespace)
                    .set_namespaces(Some(namespaces.iter().map(|n| n.to_string()).collect()))
                    .build(),
            )
            .send()
            .await
            .expect("AssociateAccessPolicy");
        assert_eq!(associated.principal_arn(), Some(deployer.as_str()));
        let policy = associated.associated_access_policy().unwrap();
        assert_eq!(
            policy.access_scope().unwrap().namespaces(),
            namespaces.as_slice()
        );
    }
    let policies = eks
        .list_associated_access_policies()
        .cluster_name("demo")
        .principal_arn(&deployer)
        .send()
        .await
        .unwrap();
    assert_eq!(policies.associated_access_policies().len(), 1);
    let by_policy = eks
        .list_access_entries()
        .cluster_name("demo")
        .associated_policy_arn(VIEW_POLICY)
        .send()
        .await
        .unwrap();
    assert_eq!(by_policy.access_entries(), [deployer.as_str()]);
    let all = eks
        .list_access_entries()
        .cluster_name("demo")
        .send()
        .await
        .unwrap();
    assert_eq!(all.access_entries().len(), 2);

    let updated = eks
        .update_access_entry()
        .cluster_name("demo")
        .principal_arn(&deployer)
        .kubernetes_groups("writers")
        .send()
        .await
        .expect("UpdateAccessEntry");
    assert_eq!(
        updated.access_entry().unwrap().kubernetes_groups(),
        ["writers"]
    );

    eks.disassociate_access_policy()
        .cluster_name("demo")
        .principal_arn(&deployer)
        .policy_arn(VIEW_POLICY)
        .send()
        .await
        .expect("DisassociateAccessPolicy");
    let again = eks
        .disassociate_access_policy()
        .cluster_name("demo")
        .principal_arn(&deployer)
        .policy_arn(VIEW_POLICY)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code_of(&again), ("ResourceNotFoundException".into(), 404));

    eks.delete_access_entry()
        .cluster_name("demo")
        .principal_arn(&deployer)
        .send()
        .await
        .expect("DeleteAccessEntry");
    for gone in [
        eks.describe_access_entry()
            .cluster_name("demo")
            .principal_arn(&deployer)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| code_of(&e)),
        eks.delete_access_entry()
            .cluster_name("demo")
            .principal_arn(&deployer)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| code_of(&e)),
    ] {
        assert_eq!(gone, Err(("ResourceNotFoundException".into(), 404)));
    }
    let refused = eks
        .describe_access_entry()
        .cluster_name("demo")
        .principal_arn(&deployer)
        .send()
        .await
        .unwrap_err();
    assert!(
        refused
            .into_service_error()
            .to_string()
            .contains("The specified principalArn could not be found")
    );

    // Deleting the cluster forgets its entries.
    assert_eq!(bed.entries.entries(REGION, "demo").len(), 1);
    eks.delete_cluster().name("demo").send().await.unwrap();
    assert!(bed.entries.entries(REGION, "demo").is_empty());
    assert!(bed.entries.lookup(REGION, "demo", MOTO_USER).is_none());
}

/// A kube client presenting an EKS token for `cluster` signed with `credentials`, `age` ago
/// (tokens of different ages differ: the API server keeps a successful authentication of the
/// same token for 10 s).
async fn client_with_token(
    kube: &ControlPlane,
    cluster: &str,
    credentials: Credentials,
    age: u64,
) -> kube::Client {
    let token = common::token::presign_token(
        cluster,
        REGION,
        credentials,
        SystemTime::now() - Duration::from_secs(age),
    )
    .expect("a token");
    let kubeconfig = std::fs::read_to_string(kube.kubeconfig())
        .unwrap()
        .replace("token: testbed-token", &format!("token: {}", token.token));
    let config = kube::Config::from_custom_kubeconfig(
        kube::config::Kubeconfig::from_yaml(&kubeconfig).unwrap(),
        &Default::default(),
    )
    .await
    .unwrap();
    kube::Client::try_from(config).unwrap()
}

/// The HTTP status of listing namespaces as `client`.
async fn list_status(client: kube::Client) -> u16 {
    match Api::<Namespace>::all(client)
        .list(&ListParams::default())
        .await
    {
        Ok(_) => 200,
        Err(kube::Error::Api(status)) => status.code,
        Err(other) => panic!("{other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_server_lets_in_callers_with_an_access_entry_only() {
    let bed = Bed::start();
    let eks = bed.eks(None).await;
    create_cluster(
        &eks,
        "demo",
        Some(AuthenticationMode::ApiAndConfigMap),
        None,
    )
    .await
    .unwrap();
    let kube = ControlPlane::start_with(Settings {
        sts_endpoint: Some(bed.moto.endpoint.clone()),
        access_entries: Some(bed.entries.for_cluster(REGION, "demo")),
        controller_manager: false,
        ..Settings::default()
    });
    let creator = Credentials::new("testing", "testing", None, None, "creator");
    let deployer = bed.role("/apps/", "deployer").await;
    let session = bed.assume(&deployer, "ci").await;
    let session_arn = "arn:aws:sts::123456789012:assumed-role/deployer/ci";

    // The creator is in (its bootstrap entry); the deployer is not.
    assert_eq!(
        list_status(client_with_token(&kube, "demo", creator.clone(), 1).await).await,
        200
    );
    assert_eq!(
        list_status(client_with_token(&kube, "demo", session.clone(), 1).await).await,
        401
    );
    assert!(
        kube.refused_tokens().contains(&Refusal::NoAccessEntry {
            arn: session_arn.into(),
            cluster: "demo".into()
        }),
        "{:?}",
        kube.refused_tokens()
    );

    // An entry with a Kubernetes group only: authenticated, and RBAC (no binding) forbids.
    eks.create_access_entry()
        .cluster_name("demo")
        .principal_arn(&deployer)
        .kubernetes_groups("readers")
        .send()
        .await
        .unwrap();
    assert_eq!(
        list_status(client_with_token(&kube, "demo", session.clone(), 2).await).await,
        403
    );
    // With the cluster admin policy: in.
    eks.associate_access_policy()
        .cluster_name("demo")
        .principal_arn(&deployer)
        .policy_arn(CLUSTER_ADMIN_POLICY)
        .access_scope(
            AccessScope::builder()
                .r#type(AccessScopeType::Cluster)
                .build(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        list_status(client_with_token(&kube, "demo", session.clone(), 3).await).await,
        200
    );
    let users: std::collections::BTreeSet<(String, u16)> = kube
        .requests()
        .into_iter()
        .filter(|r| r.path == "/api/v1/namespaces")
        .map(|r| (r.user, r.code))
        .collect();
    assert!(users.contains(&(MOTO_USER.to_owned(), 200)), "{users:?}");
    assert!(users.contains(&(session_arn.to_owned(), 403)), "{users:?}");
    assert!(users.contains(&(session_arn.to_owned(), 200)), "{users:?}");

    // Deleted: out again, and so is the creator once its entry is gone.
    eks.delete_access_entry()
        .cluster_name("demo")
        .principal_arn(&deployer)
        .send()
        .await
        .unwrap();
    assert_eq!(
        list_status(client_with_token(&kube, "demo", session, 4).await).await,
        401
    );
    eks.delete_access_entry()
        .cluster_name("demo")
        .principal_arn(MOTO_USER)
        .send()
        .await
        .unwrap();
    assert_eq!(
        list_status(client_with_token(&kube, "demo", creator, 5).await).await,
        401
    );
}
