//! Routes whose target is gone. EC2 keeps a route to a NAT gateway that was deleted (or failed),
//! or to a network interface that was deleted, and reports its state `blackhole`; moto 5.2.5
//! reports every such route `active` for good, so a subnet that lost its way out would look
//! routed. [`blackhole_routes`] makes moto's `DescribeRouteTables` answers say `blackhole`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use super::lock;
use super::zones::moto_ec2;
use crate::awsproxy::{AwsProxy, AwsRequest, Verdict};

/// What moto holds of the targets routes may name, asked just before a `DescribeRouteTables`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Targets {
    /// Every NAT gateway moto lists, with its state (`available`, `deleted`, ...).
    pub nat_gateways: BTreeMap<String, String>,
    /// Every network interface that exists.
    pub interfaces: BTreeSet<String>,
}

impl Targets {
    fn nat_gone(&self, id: &str) -> bool {
        self.nat_gateways
            .get(id)
            .is_none_or(|state| matches!(state.as_str(), "deleted" | "deleting" | "failed"))
    }

    /// moto's `DescribeRouteTables` XML with every route to a gone NAT gateway or network
    /// interface in state `blackhole`.
    pub fn rewrite_xml(&self, xml: &str) -> String {
        let mut out = String::with_capacity(xml.len());
        let mut rest = xml;
        while let Some(start) = rest.find("<routeSet>") {
            let body = start + "<routeSet>".len();
            let Some(len) = rest[body..].find("</routeSet>") else {
                break;
            };
            out.push_str(&rest[..body]);
            out.push_str(&self.rewrite_routes(&rest[body..body + len]));
            rest = &rest[body + len..];
        }
        out.push_str(rest);
        out
    }

    /// The `<item>`s of one `routeSet` (routes have no nested items).
    fn rewrite_routes(&self, routes: &str) -> String {
        let mut out = String::with_capacity(routes.len());
        for (i, item) in routes.split("</item>").enumerate() {
            if i > 0 {
                out.push_str("</item>");
            }
            let gone = element(item, "natGatewayId").is_some_and(|nat| self.nat_gone(nat))
                || element(item, "networkInterfaceId")
                    .is_some_and(|eni| !self.interfaces.contains(eni));
            if gone {
                out.push_str(&item.replace("<state>active</state>", "<state>blackhole</state>"));
            } else {
                out.push_str(item);
            }
        }
        out
    }
}

/// The text of the first `<name>…</name>` in `xml`.
fn element<'a>(xml: &'a str, name: &str) -> Option<&'a str> {
    let open = format!("<{name}>");
    let start = xml.find(&open)? + open.len();
    let len = xml[start..].find('<')?;
    Some(&xml[start..start + len])
}

/// The SDK's id of one operation (the same on its retries), to match a rule's look-up with the
/// answer it is for.
fn invocation(request: &AwsRequest) -> String {
    request
        .header("amz-sdk-invocation-id")
        .unwrap_or_default()
        .to_owned()
}

fn is_describe_route_tables(request: &AwsRequest) -> bool {
    request.service == "ec2" && request.action == "DescribeRouteTables"
}

/// Installs on `proxy`: before each `DescribeRouteTables` reaches moto, moto's NAT gateways and
/// network interfaces are asked for (at `moto_endpoint`, directly); its answer then reports the
/// routes to gone targets as `blackhole`, as EC2 does.
pub fn blackhole_routes(proxy: &AwsProxy, moto_endpoint: &str) {
    let seen: Arc<Mutex<BTreeMap<String, Targets>>> = Arc::default();
    let endpoint = moto_endpoint.to_owned();
    let found = seen.clone();
    proxy.async_rule(move |request| {
        let (endpoint, found) = (endpoint.clone(), found.clone());
        async move {
            if !is_describe_route_tables(&request) {
                return Verdict::Pass;
            }
            let ec2 = moto_ec2(&endpoint, &request.region);
            let mut targets = Targets::default();
            if let Ok(answer) = ec2.describe_nat_gateways().send().await {
                for nat in answer.nat_gateways() {
                    targets.nat_gateways.insert(
                        nat.nat_gateway_id().unwrap_or_default().to_owned(),
                        nat.state()
                            .map(|s| s.as_str().to_owned())
                            .unwrap_or_default(),
                    );
                }
            }
            if let Ok(answer) = ec2.describe_network_interfaces().send().await {
                targets.interfaces.extend(
                    answer
                        .network_interfaces()
                        .iter()
                        .filter_map(|n| n.network_interface_id().map(str::to_owned)),
                );
            }
            lock(&found).insert(invocation(&request), targets);
            Verdict::Pass
        }
    });
    proxy.rewrite(move |request, reply| {
        if !is_describe_route_tables(request) || reply.status != 200 {
            return;
        }
        if let Some(targets) = lock(&seen).remove(&invocation(request)) {
            reply.body = targets.rewrite_xml(&reply.text()).into_bytes();
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// moto 5.2.5's answer, as captured.
    const ANSWER: &str = "<DescribeRouteTablesResponse><routeTableSet><item><associationSet><item><main>false</main><routeTableId>rtb-1</routeTableId><subnetId>subnet-1</subnetId><associationState><state>associated</state></associationState></item></associationSet><routeTableId>rtb-1</routeTableId><routeSet><item><destinationCidrBlock>10.9.0.0/16</destinationCidrBlock><gatewayId>local</gatewayId><origin>CreateRouteTable</origin><state>active</state></item><item><destinationCidrBlock>0.0.0.0/0</destinationCidrBlock><natGatewayId>nat-1</natGatewayId><origin>CreateRoute</origin><state>active</state></item><item><destinationCidrBlock>10.8.0.0/16</destinationCidrBlock><networkInterfaceId>eni-1</networkInterfaceId><origin>CreateRoute</origin><state>active</state></item></routeSet><tagSet/></item></routeTableSet></DescribeRouteTablesResponse>";

    fn targets(nat: Option<&str>, eni: bool) -> Targets {
        Targets {
            nat_gateways: nat
                .map(|state| BTreeMap::from([("nat-1".to_owned(), state.to_owned())]))
                .unwrap_or_default(),
            interfaces: if eni {
                BTreeSet::from(["eni-1".to_owned()])
            } else {
                BTreeSet::new()
            },
        }
    }

    #[test]
    fn routes_to_gone_targets_are_blackholes() {
        assert_eq!(
            targets(Some("available"), true).rewrite_xml(ANSWER),
            ANSWER,
            "live targets: unchanged"
        );
        let nat_gone = targets(Some("deleted"), true).rewrite_xml(ANSWER);
        assert_eq!(nat_gone.matches("<state>blackhole</state>").count(), 1);
        assert!(nat_gone.contains(
            "<natGatewayId>nat-1</natGatewayId><origin>CreateRoute</origin><state>blackhole</state>"
        ));
        assert!(
            nat_gone.contains("<associationState><state>associated</state>"),
            "only routes change"
        );
        assert_eq!(
            targets(None, false)
                .rewrite_xml(ANSWER)
                .matches("<state>blackhole</state>")
                .count(),
            2,
            "a NAT gateway moto does not list and a deleted interface"
        );
    }
}
