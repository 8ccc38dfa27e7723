//! A request as rules see it: service, region and action from the signature and the body,
//! parameters of the query protocols, JSON of the others.

/// One request a binary sent through the proxy.
#[derive(Debug, Clone)]
pub struct AwsRequest {
    /// The signing name from the `Authorization` header: `ec2`, `eks`, `iam`, ...
    pub service: String,
    /// The signing region from the `Authorization` header.
    pub region: String,
    /// `Action=` of a query-protocol call, else the operation of `X-Amz-Target`, else empty (a
    /// REST call such as EKS's: match on [`AwsRequest::method`] and [`AwsRequest::path`]).
    pub action: String,
    /// HTTP method.
    pub method: String,
    /// The path of the URL (percent-decoded).
    pub path: String,
    /// The query string as sent (without `?`).
    pub query: String,
    /// Headers, names in lower case.
    pub headers: Vec<(String, String)>,
    /// The body as sent.
    pub body: Vec<u8>,
}

impl AwsRequest {
    pub(super) fn new(
        method: &str,
        target: &str,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    ) -> Self {
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        let path = percent_encoding::percent_decode_str(path)
            .decode_utf8_lossy()
            .into_owned();
        let mut request = AwsRequest {
            service: String::new(),
            region: String::new(),
            action: String::new(),
            method: method.to_owned(),
            path,
            query: query.to_owned(),
            headers,
            body,
        };
        if let Some(scope) = request
            .header("authorization")
            .and_then(|a| a.split("Credential=").nth(1))
            .map(|c| c.split([',', ' ']).next().unwrap_or_default().to_owned())
        {
            let parts: Vec<&str> = scope.split('/').collect();
            request.region = parts.get(2).copied().unwrap_or_default().to_owned();
            request.service = parts.get(3).copied().unwrap_or_default().to_owned();
        }
        request.action = request
            .param("Action")
            .or_else(|| {
                request
                    .header("x-amz-target")
                    .and_then(|t| t.rsplit('.').next())
                    .map(str::to_owned)
            })
            .unwrap_or_default();
        request
    }

    /// A query-protocol request of `service` with `Action=action`, for unit tests of rules.
    pub fn for_tests(service: &str, action: &str) -> AwsRequest {
        AwsRequest::query_for_tests(service, &format!("Action={action}"))
    }

    /// A query-protocol request of `service` with this form body (`Action=...&...`), for tests.
    pub fn query_for_tests(service: &str, body: &str) -> AwsRequest {
        AwsRequest::new(
            "POST",
            "/",
            vec![
                (
                    "authorization".into(),
                    format!(
                        "AWS4-HMAC-SHA256 Credential=testing/20261202/us-east-2/{service}/aws4_request, SignedHeaders=host"
                    ),
                ),
                (
                    "content-type".into(),
                    "application/x-www-form-urlencoded; charset=utf-8".into(),
                ),
            ],
            body.as_bytes().to_vec(),
        )
    }

    /// The first header of that name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// A parameter of a query-protocol call: from the form body, else the query string.
    pub fn param(&self, name: &str) -> Option<String> {
        self.params()
            .into_iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
    }

    /// Every form parameter (body first, then the query string), decoded.
    pub fn params(&self) -> Vec<(String, String)> {
        let form = self
            .header("content-type")
            .is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"));
        let mut params = Vec::new();
        if form {
            params.extend(form_urlencoded::parse(&self.body).into_owned());
        }
        params.extend(form_urlencoded::parse(self.query.as_bytes()).into_owned());
        params
    }

    /// Every value of a list parameter such as `SubnetId.1`, `SubnetId.2`, ... in order.
    pub fn list_param(&self, prefix: &str) -> Vec<String> {
        let mut found: Vec<(u32, String)> = self
            .params()
            .into_iter()
            .filter_map(|(k, v)| {
                let index = k.strip_prefix(prefix)?.strip_prefix('.')?.parse().ok()?;
                Some((index, v))
            })
            .collect();
        found.sort();
        found.into_iter().map(|(_, v)| v).collect()
    }

    /// The body as JSON (REST and JSON protocols), if it is JSON.
    pub fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_slice(&self.body).ok()
    }

    /// `service Action` for query/JSON calls, `service METHOD /path` for REST calls.
    pub fn name(&self) -> String {
        if self.action.is_empty() {
            format!("{} {} {}", self.service, self.method, self.path)
        } else {
            format!("{} {}", self.service, self.action)
        }
    }

    /// True for a call that may change something (the test bed's rule, as [`crate::Call`]).
    pub fn is_mutating(&self) -> bool {
        crate::moto::is_mutating(&self.method, &self.action)
    }

    pub(super) fn protocol(&self) -> Protocol {
        if self.header("x-amz-target").is_some() {
            Protocol::Json
        } else if self.service == "ec2" {
            Protocol::Ec2
        } else if !self.action.is_empty() {
            Protocol::Query
        } else {
            Protocol::RestJson
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Protocol {
    /// EC2's own query protocol.
    Ec2,
    /// awsQuery: IAM, STS, CloudFormation, ELBv2.
    Query,
    /// awsJson (`X-Amz-Target`): Service Quotas.
    Json,
    /// restJson1: EKS.
    RestJson,
}
