//! The IAM permissions paragraph of a binary, from `eks_preflight::actions::ACTIONS`.

use eks_preflight::actions::{LEFTOVERS, PREFLIGHT, needed_by};

/// "IAM permissions: `a`, `b`; with `--admin`: `c`." for `binary`, wrapped at `width`.
pub fn paragraph(binary: &str, width: usize) -> String {
    let mut groups: Vec<(String, Vec<&str>)> = needed_by(binary)
        .into_iter()
        .map(|(when, names)| (when.to_string(), names))
        .collect();
    if binary == PREFLIGHT {
        groups.extend(needed_by(LEFTOVERS).into_iter().map(|(when, names)| {
            let when = match when {
                "" => "for `leftovers`".to_string(),
                when => format!("for `leftovers`, {when}"),
            };
            (when, names)
        }));
    }
    let text = if groups.is_empty() {
        "IAM permissions: none; it makes no AWS call.".to_string()
    } else {
        let parts: Vec<String> = groups
            .iter()
            .map(|(when, names)| {
                let names: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
                match when.as_str() {
                    "" => names.join(", "),
                    when => format!("{when}: {}", names.join(", ")),
                }
            })
            .collect();
        format!("IAM permissions: {}.", parts.join("; "))
    };
    crate::wrap(text.split(' '), width).join("\n") + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions_follow_what_is_always_needed() {
        let text = paragraph("irsa", 100);
        assert!(
            text.starts_with("IAM permissions: `sts:GetCallerIdentity`, "),
            "{text}"
        );
        assert!(
            text.replace('\n', " ")
                .ends_with("; for `list`: `iam:ListRoles`, `iam:ListRoleTags`. "),
            "{text}"
        );
        assert!(text.lines().all(|l| l.len() <= 100), "{text}");
        assert_eq!(
            paragraph("eks-patch", 100),
            "IAM permissions: none; it makes no AWS call.\n"
        );
        let preflight = paragraph("eks-preflight", 100).replace('\n', " ");
        assert!(
            preflight.contains("`iam:SimulatePrincipalPolicy`"),
            "{preflight}"
        );
        assert!(preflight.contains("; for `leftovers`: "), "{preflight}");
    }
}
