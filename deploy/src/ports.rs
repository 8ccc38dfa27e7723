//! The pod ports the ALB sends to, from the manifests: each backend of an Ingress of class `alb`
//! through its Service to the target port (a named one through the pods the Service selects).
//! `eks-sg-stack` opens only the target ports it was given on the cluster security group, so a
//! backend on another port would get no traffic (the ALB's health checks time out and the app
//! never answers): that is refused before anything is applied.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::fargate::pod_template;
use crate::manifests::Doc;

/// One backend of an ALB Ingress and the pod port it reaches.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Target {
    /// `namespace/name` of the Ingress.
    pub ingress: String,
    /// The Service's name.
    pub service: String,
    /// The pod port.
    pub port: u16,
}

/// True for an Ingress the AWS Load Balancer Controller serves (class `alb`).
pub fn is_alb_ingress(doc: &Doc) -> bool {
    doc.kind == "Ingress"
        && (doc.value["spec"]["ingressClassName"].as_str() == Some("alb")
            || doc.value["metadata"]["annotations"]["kubernetes.io/ingress.class"].as_str()
                == Some("alb"))
}

/// Every backend `(service, port)` of an Ingress: the default backend and each path's.
fn backends(ingress: &Value) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    let mut add = |backend: &Value| {
        if let Some(name) = backend["service"]["name"].as_str() {
            out.push((name.to_owned(), backend["service"]["port"].clone()));
        }
    };
    add(&ingress["spec"]["defaultBackend"]);
    for rule in ingress["spec"]["rules"].as_array().into_iter().flatten() {
        for path in rule["http"]["paths"].as_array().into_iter().flatten() {
            add(&path["backend"]);
        }
    }
    out
}

/// The container port named `name` in the pods of `namespace` that `selector` selects.
fn named_port(docs: &[Doc], namespace: &str, selector: &Value, name: &str) -> Option<u16> {
    let selector = selector.as_object()?;
    docs.iter()
        .filter(|d| d.namespace.as_deref().unwrap_or("default") == namespace)
        .filter_map(pod_template)
        .filter(|template| {
            selector
                .iter()
                .all(|(k, v)| &template["metadata"]["labels"][k] == v)
        })
        .flat_map(|template| {
            template["spec"]["containers"]
                .as_array()
                .into_iter()
                .flatten()
        })
        .flat_map(|container| container["ports"].as_array().into_iter().flatten())
        .find(|port| port["name"].as_str() == Some(name))
        .and_then(|port| port["containerPort"].as_u64())
        .and_then(|p| u16::try_from(p).ok())
}

/// The pod port a Service port leads to, when the manifests tell it.
fn target_port(docs: &[Doc], service: &Doc, port: &Value) -> Option<u16> {
    let entry = service.value["spec"]["ports"]
        .as_array()?
        .iter()
        .find(|p| match port {
            Value::Object(o) => {
                (o.get("number").is_some() && p["port"] == o["number"])
                    || (o.get("name").is_some() && p["name"] == o["name"])
            }
            _ => false,
        })?;
    let namespace = service.namespace.as_deref().unwrap_or("default");
    match &entry["targetPort"] {
        Value::Number(n) => n.as_u64().and_then(|p| u16::try_from(p).ok()),
        Value::String(name) => match name.parse::<u16>() {
            Ok(number) => Some(number),
            Err(_) => named_port(docs, namespace, &service.value["spec"]["selector"], name),
        },
        // No targetPort: the Service's port.
        _ => entry["port"].as_u64().and_then(|p| u16::try_from(p).ok()),
    }
}

/// The pod ports the ALB Ingresses among `docs` send to, as far as the manifests tell
/// (a backend whose Service is not among them is left out: it is not ours to judge).
pub fn alb_targets(docs: &[Doc]) -> Vec<Target> {
    let mut out = BTreeSet::new();
    for ingress in docs.iter().filter(|d| is_alb_ingress(d)) {
        let namespace = ingress.namespace.as_deref().unwrap_or("default");
        for (service, port) in backends(&ingress.value) {
            let found = docs.iter().find(|d| {
                d.kind == "Service"
                    && d.name == service
                    && d.namespace.as_deref().unwrap_or("default") == namespace
            });
            if let Some(port) = found.and_then(|s| target_port(docs, s, &port)) {
                out.insert(Target {
                    ingress: format!("{namespace}/{}", ingress.name),
                    service,
                    port,
                });
            }
        }
    }
    out.into_iter().collect()
}

/// The targets whose port the ALB security group does not open.
pub fn closed<'a>(targets: &'a [Target], open: &[u16]) -> Vec<&'a Target> {
    targets.iter().filter(|t| !open.contains(&t.port)).collect()
}

/// The ports `eks-sg-stack` opened, from its section; None when it does not say (a section
/// written before they were chosen: every port was open), or there is no section.
pub fn open_ports(state: &common::State) -> Option<Vec<u16>> {
    // A section this version cannot read says nothing of the ports (none are judged).
    common::sections::sg_stack::Facts::read(state)
        .ok()
        .flatten()?
        .target_ports
}

/// Refuses manifests whose ALB backends reach a pod port the ALB security group keeps closed.
pub fn check(state: &common::State, docs: &[Doc]) -> Result<(), crate::error::Usage> {
    let Some(open) = open_ports(state) else {
        return Ok(());
    };
    let targets = alb_targets(docs);
    let shut = closed(&targets, &open);
    if shut.is_empty() {
        return Ok(());
    }
    let join = |ports: &mut dyn Iterator<Item = u16>| {
        let set: BTreeSet<u16> = ports.collect();
        set.iter()
            .map(u16::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    };
    Err(crate::error::Usage::ClosedPorts {
        open: join(&mut open.iter().copied()),
        closed: shut
            .iter()
            .map(|t| {
                format!(
                    "Ingress {} sends to Service {} on pod port {}",
                    t.ingress, t.service, t.port
                )
            })
            .collect::<Vec<_>>()
            .join("; "),
        wanted: join(&mut open.iter().copied().chain(targets.iter().map(|t| t.port)))
            .replace(", ", " --target-port "),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifests::parse;

    const APP: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: app, namespace: game}
spec:
  selector: {matchLabels: {app: game}}
  template:
    metadata: {labels: {app: game, tier: web}}
    spec:
      containers:
        - name: web
          image: nginx
          ports: [{name: http, containerPort: 8080}, {name: metrics, containerPort: 9100}]
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: game}
spec:
  selector: {app: game}
  ports:
    - {name: front, port: 80, targetPort: http}
    - {name: plain, port: 81, targetPort: 9000}
    - {name: same, port: 82}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: web, namespace: game}
spec:
  ingressClassName: alb
  defaultBackend: {service: {name: web, port: {number: 82}}}
  rules:
    - http:
        paths:
          - {path: /, pathType: Prefix, backend: {service: {name: web, port: {name: front}}}}
          - {path: /p, pathType: Prefix, backend: {service: {name: web, port: {number: 81}}}}
          - {path: /x, pathType: Prefix, backend: {service: {name: elsewhere, port: {number: 80}}}}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: other, namespace: game}
spec:
  ingressClassName: nginx
  defaultBackend: {service: {name: web, port: {number: 81}}}
"#;

    #[test]
    fn backends_lead_to_pod_ports_through_their_services() {
        let docs = parse("app.yaml", APP).unwrap();
        let ports: Vec<u16> = alb_targets(&docs).iter().map(|t| t.port).collect();
        // Named through the pod template, numbered, and the Service port itself; the backend
        // whose Service is elsewhere and the other class's Ingress are left out.
        assert_eq!(ports, [82, 8080, 9000]);
        let targets = alb_targets(&docs);
        let shut: Vec<u16> = closed(&targets, &[80, 8080])
            .iter()
            .map(|t| t.port)
            .collect();
        assert_eq!(shut, [82, 9000]);
        assert!(closed(&targets, &[82, 8080, 9000]).is_empty());
    }

    #[test]
    fn the_embedded_app_targets_port_80() {
        let text = include_str!("../../manifests/06-app-2048.yaml").to_owned()
            + "\n---\n"
            + &include_str!("../../manifests/07-ingress-2048.yaml").replace("SG_ID", "sg-1");
        let docs = parse("app.yaml", &text).unwrap();
        let targets = alb_targets(&docs);
        assert_eq!(targets.len(), 1, "{targets:?}");
        assert_eq!(targets[0].port, 80);
    }

    #[test]
    fn open_ports_come_from_the_sg_stack_section() {
        let state =
            common::State::parse(r#"{"schemaVersion":1,"sgStack":{"targetPorts":[80,8080]}}"#)
                .unwrap();
        assert_eq!(open_ports(&state), Some(vec![80, 8080]));
        let old =
            common::State::parse(r#"{"schemaVersion":1,"sgStack":{"allowedCidrs":[]}}"#).unwrap();
        assert_eq!(open_ports(&old), None);
    }
}
