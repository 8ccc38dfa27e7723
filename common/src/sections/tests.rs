//! A whole state document, as the pipeline leaves it, read into every section's model and
//! written back: byte for byte the same, unknown keys in every section kept in place.

use super::*;
use crate::State;

const DOCUMENT: &str = r#"{
  "schemaVersion": 1,
  "cluster": {
    "name": "demo",
    "region": "us-east-2",
    "accountId": "123456789012",
    "arn": "arn:aws:eks:us-east-2:123456789012:cluster/demo",
    "endpoint": "https://ABC.gr7.us-east-2.eks.amazonaws.com",
    "certificateAuthorityData": "Q0E=",
    "oidcIssuer": "https://oidc.eks.us-east-2.amazonaws.com/id/ABC",
    "vpcId": "vpc-0123456789abcdef0",
    "publicSubnetIds": [
      "subnet-0a",
      "subnet-0b"
    ],
    "privateSubnetIds": [
      "subnet-1a",
      "subnet-1b"
    ],
    "clusterSecurityGroupId": "sg-0cluster",
    "kubernetesVersion": "1.35",
    "publicAccessCidrs": [
      "0.0.0.0/0"
    ],
    "supportType": "STANDARD",
    "clusterRoleArn": "arn:aws:iam::123456789012:role/demo-cluster",
    "podExecutionRoleArn": "arn:aws:iam::123456789012:role/demo-pods",
    "networkStackName": "eks-demo-network",
    "networkStackId": "arn:aws:cloudformation:us-east-2:123456789012:stack/eks-demo-network/1",
    "fargateProfiles": [
      "fp-0123456789ab"
    ],
    "fargateNamespaces": [
      "kube-system",
      "game-2048"
    ],
    "networkCreatedByUs": true,
    "clusterCreatedByUs": true,
    "adoptedRoles": [
      {
        "name": "r",
        "attachedPolicies": [
          "arn:aws:iam::aws:policy/AmazonEKSClusterPolicy"
        ]
      }
    ],
    "rolesCreatedByUs": true,
    "accessEntries": [
      {
        "principalArn": "arn:aws:iam::123456789012:role/ci",
        "createdByUs": true
      }
    ],
    "coreDnsOnFargate": true,
    "futureCluster": {
      "b": 1,
      "a": [
        2
      ]
    }
  },
  "oidc": {
    "issuer": "https://oidc.eks.us-east-2.amazonaws.com/id/ABC",
    "providerArn": "arn:aws:iam::123456789012:oidc-provider/oidc.eks.us-east-2.amazonaws.com/id/ABC",
    "thumbprints": [],
    "clientIds": [
      "sts.amazonaws.com"
    ],
    "createdByUs": true,
    "clusterName": "demo",
    "region": "us-east-2",
    "futureOidc": "x"
  },
  "irsa": [
    {
      "clusterName": "demo",
      "region": "us-east-2",
      "namespace": "kube-system",
      "serviceAccount": "aws-load-balancer-controller",
      "roleName": "demo-lbc",
      "roleArn": "arn:aws:iam::123456789012:role/demo-lbc",
      "providerArn": "arn:aws:iam::123456789012:oidc-provider/oidc.eks.us-east-2.amazonaws.com/id/ABC",
      "inlinePolicies": [
        {
          "name": "lbc",
          "source": "policies/lbc.json",
          "sha256": "00ff"
        }
      ],
      "managedPolicies": [],
      "serviceAccountCreated": true,
      "roleCreated": true,
      "futureIrsa": null
    }
  ],
  "sgStack": {
    "stackName": "alb-securitygroup-demo-us-east-2",
    "stackId": "arn:aws:cloudformation:us-east-2:123456789012:stack/alb-securitygroup-demo-us-east-2/1",
    "region": "us-east-2",
    "clusterName": "demo",
    "securityGroupId": "sg-0alb",
    "vpcId": "vpc-0123456789abcdef0",
    "clusterSecurityGroupId": "sg-0cluster",
    "clusterSecurityGroupSource": "state",
    "allowedCidrs": [
      "0.0.0.0/0"
    ],
    "targetPorts": [
      80
    ],
    "futureSgStack": true
  },
  "patch": {
    "outputDir": "patched",
    "controllerVersion": "v3.7.0",
    "clusterName": "demo",
    "region": "us-east-2",
    "vpcId": "vpc-0123456789abcdef0",
    "securityGroupId": "sg-0alb",
    "roleArn": "arn:aws:iam::123456789012:role/demo-lbc",
    "albSubnetIds": [
      "subnet-0a",
      "subnet-0b"
    ],
    "files": [
      {
        "name": "01-namespace.yaml",
        "sha256": "aa",
        "futureFile": 1
      }
    ],
    "webhookCertificate": {
      "notAfter": "2036-01-01T00:00:00Z",
      "dnsNames": [
        "aws-load-balancer-webhook-service.kube-system.svc"
      ],
      "caPem": "CA",
      "certPem": "CERT",
      "keyFile": ".keys/tls.key",
      "futureCertificate": 2
    },
    "futurePatch": [
      1
    ]
  },
  "deploy": {
    "clusterName": "demo",
    "manifestsDir": "patched",
    "appliedObjects": [
      {
        "apiVersion": "v1",
        "kind": "Namespace",
        "name": "game-2048",
        "file": "01-namespace.yaml",
        "futureApplied": "y"
      }
    ],
    "hostname": "k8s-game2048-abc.us-east-2.elb.amazonaws.com",
    "url": "http://k8s-game2048-abc.us-east-2.elb.amazonaws.com/",
    "secondsToFirst200": 12.5,
    "futureDeploy": {}
  },
  "future": "kept",
  "timings": {
    "cluster": {
      "create": {
        "startedAt": "2026-01-01T00:00:00Z",
        "seconds": 1.0
      }
    }
  }
}
"#;

#[test]
fn a_whole_document_round_trips_through_every_model() {
    let mut state = State::parse(DOCUMENT).unwrap();
    assert_eq!(
        state.to_json(),
        DOCUMENT,
        "the fixture is in the writer's format"
    );

    let cluster = cluster::Section::read(&state).unwrap().unwrap();
    assert!(cluster.extra.contains_key("futureCluster"));
    let oidc = oidc::Section::read(&state).unwrap().unwrap();
    assert!(oidc.extra.contains_key("futureOidc"));
    let irsa = irsa::entries(&state).unwrap();
    assert!(irsa[0].extra.contains_key("futureIrsa"));
    let sg_stack = sg_stack::Section::read(&state).unwrap().unwrap();
    assert!(sg_stack.extra.contains_key("futureSgStack"));
    let patch = patch::Section::read(&state).unwrap().unwrap();
    assert!(patch.extra.contains_key("futurePatch"));
    assert!(patch.files[0].extra.contains_key("futureFile"));
    assert!(
        patch
            .webhook_certificate
            .extra
            .contains_key("futureCertificate")
    );
    let deploy = deploy::Section::read(&state).unwrap().unwrap();
    assert!(deploy.extra.contains_key("futureDeploy"));
    assert!(
        deploy.applied_objects[0]
            .extra
            .contains_key("futureApplied")
    );

    state.set_section(cluster::KEY, &cluster);
    state.set_section(oidc::KEY, &oidc);
    state.set_section(irsa::KEY, &irsa);
    state.set_section(sg_stack::KEY, &sg_stack);
    state.set_section(patch::KEY, &patch);
    state.set_section(deploy::KEY, &deploy);
    assert_eq!(state.to_json(), DOCUMENT);
}

#[test]
fn the_views_read_what_the_models_write() {
    let state = State::parse(DOCUMENT).unwrap();
    let cluster = cluster::Section::read(&state).unwrap().unwrap();
    assert_eq!(
        cluster::Facts::of(&state, "demo").unwrap(),
        Some(cluster.facts.clone())
    );
    assert_eq!(
        cluster::fargate_profile(&state),
        Some((
            cluster.fargate_profiles[0].clone(),
            cluster.fargate_namespaces.clone()
        ))
    );

    let oidc = oidc::Section::read(&state).unwrap().unwrap();
    assert_eq!(
        oidc::Facts::read(&state).unwrap().unwrap(),
        oidc::Facts {
            issuer: Some(oidc.issuer.clone()),
            provider_arn: Some(oidc.provider_arn.clone()),
        }
    );
    assert_eq!(
        oidc::provider_arn_for(&state, &oidc.issuer),
        Some(oidc.provider_arn)
    );

    let entry = &irsa::entries(&state).unwrap()[0];
    assert_eq!(
        irsa::role_arn_for(&state, &entry.namespace, &entry.service_account).unwrap(),
        Some(entry.role_arn.clone())
    );

    let sg_stack = sg_stack::Section::read(&state).unwrap().unwrap();
    assert_eq!(
        sg_stack::Facts::read(&state).unwrap().unwrap(),
        sg_stack::Facts {
            cluster_name: Some(sg_stack.cluster_name),
            vpc_id: Some(sg_stack.vpc_id),
            security_group_id: sg_stack.security_group_id,
            target_ports: Some(sg_stack.target_ports),
        }
    );

    let patch = patch::Section::read(&state).unwrap().unwrap();
    let facts = patch::Facts::read(&state).unwrap().unwrap();
    assert_eq!(facts.output_dir, Some(patch.output_dir));
    assert_eq!(facts.cluster_name, Some(patch.cluster_name));
    assert_eq!(
        facts.file_names(),
        patch
            .files
            .iter()
            .map(|f| f.name.clone())
            .collect::<Vec<_>>()
    );

    let deploy = deploy::Section::read(&state).unwrap().unwrap();
    assert_eq!(
        deploy::Facts::read(&state).unwrap().unwrap().cluster_name,
        Some(deploy.cluster_name)
    );
    assert!(deploy::present(&state));
    assert!(!deploy::present(&State::new()));
}
