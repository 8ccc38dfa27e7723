use super::*;

fn query(body: &str, service: &str) -> AwsRequest {
    AwsRequest::query_for_tests(service, body)
}

#[test]
fn requests_are_understood() {
    let r = query(
        "Action=DescribeSubnets&Version=2016-11-15&SubnetId.2=subnet-b&SubnetId.1=subnet-a%2F1",
        "ec2",
    );
    assert_eq!(
        (r.service.as_str(), r.region.as_str(), r.action.as_str()),
        ("ec2", "us-east-2", "DescribeSubnets")
    );
    assert_eq!(r.list_param("SubnetId"), ["subnet-a/1", "subnet-b"]);
    assert!(!r.is_mutating());
    assert_eq!(r.name(), "ec2 DescribeSubnets");

    let rest = AwsRequest::new(
        "DELETE",
        "/clusters/my%20c/fargate-profiles/fp-1",
        vec![(
            "authorization".into(),
            "AWS4-HMAC-SHA256 Credential=t/20261202/eu-west-1/eks/aws4_request".into(),
        )],
        Vec::new(),
    );
    assert_eq!(rest.action, "");
    assert_eq!(rest.path, "/clusters/my c/fargate-profiles/fp-1");
    assert!(rest.is_mutating());
    assert_eq!(
        rest.name(),
        "eks DELETE /clusters/my c/fargate-profiles/fp-1"
    );
}

#[test]
fn errors_take_each_protocol_s_shape() {
    let ec2 = AwsReply::error(
        &query("Action=DeleteSecurityGroup", "ec2"),
        400,
        "DependencyViolation",
        "resource sg-1 has a dependent object",
    );
    assert!(
        ec2.text()
            .contains("<Response><Errors><Error><Code>DependencyViolation</Code>")
    );
    let cfn = AwsReply::error(
        &query("Action=DeleteStack", "cloudformation"),
        400,
        "ValidationError",
        "a <b>",
    );
    assert!(
        cfn.text().contains(
            "<Type>Sender</Type><Code>ValidationError</Code><Message>a &lt;b&gt;</Message>"
        )
    );
    let eks = AwsRequest::new(
        "DELETE",
        "/clusters/c",
        vec![(
            "authorization".into(),
            "AWS4-HMAC-SHA256 Credential=t/20261202/us-east-2/eks/aws4_request".into(),
        )],
        Vec::new(),
    );
    let reply = AwsReply::error(&eks, 409, "ResourceInUseException", "busy");
    assert!(
        reply
            .headers
            .iter()
            .any(|(k, v)| k == "x-amzn-errortype" && v.starts_with("ResourceInUseException"))
    );
    assert_eq!(AwsReply::throttled(&eks).status, 429);
    assert_eq!(
        AwsReply::throttled(&query("Action=ListRoles", "iam")).status,
        400
    );
}
