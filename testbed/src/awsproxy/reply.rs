//! An answer as rules give it, and the AWS errors in each protocol's wire format.

use super::request::{AwsRequest, Protocol};

/// An answer the proxy gives (or got from moto).
#[derive(Debug, Clone)]
pub struct AwsReply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

impl AwsReply {
    /// An AWS error in the wire format of the request's service, as the real service answers it
    /// (so the SDK reports `code` and `message` and classifies it for retries as it would).
    pub fn error(request: &AwsRequest, status: u16, code: &str, message: &str) -> AwsReply {
        let id = "eks-fa-awsproxy";
        let (content_type, body, extra) = match request.protocol() {
            Protocol::Ec2 => (
                "text/xml",
                format!(
                    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error><Code>{}</Code><Message>{}</Message></Error></Errors><RequestID>{id}</RequestID></Response>",
                    xml_escape(code),
                    xml_escape(message)
                ),
                None,
            ),
            Protocol::Query => (
                "text/xml",
                format!(
                    "<ErrorResponse><Error><Type>{}</Type><Code>{}</Code><Message>{}</Message></Error><RequestId>{id}</RequestId></ErrorResponse>",
                    if status >= 500 { "Receiver" } else { "Sender" },
                    xml_escape(code),
                    xml_escape(message)
                ),
                None,
            ),
            Protocol::Json => (
                "application/x-amz-json-1.1",
                serde_json::json!({"__type": code, "message": message}).to_string(),
                None,
            ),
            Protocol::RestJson => (
                "application/json",
                serde_json::json!({"message": message}).to_string(),
                Some(("x-amzn-errortype".to_owned(), format!("{code}:"))),
            ),
        };
        let mut headers = vec![
            ("content-type".to_owned(), content_type.to_owned()),
            ("x-amzn-requestid".to_owned(), id.to_owned()),
        ];
        headers.extend(extra);
        AwsReply {
            status,
            headers,
            body: body.into_bytes(),
        }
    }

    /// The throttling answer the request's service gives (`RequestLimitExceeded` for EC2,
    /// `TooManyRequestsException` for EKS and JSON services, `Throttling` for the query ones).
    pub fn throttled(request: &AwsRequest) -> AwsReply {
        match request.protocol() {
            Protocol::Ec2 => AwsReply::error(
                request,
                503,
                "RequestLimitExceeded",
                "Request limit exceeded.",
            ),
            Protocol::Query => AwsReply::error(request, 400, "Throttling", "Rate exceeded"),
            Protocol::Json | Protocol::RestJson => {
                AwsReply::error(request, 429, "TooManyRequestsException", "Rate exceeded")
            }
        }
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}
