//! Names AWS limits in length, shortened deterministically when they do not fit.

/// `name` when it is at most `max` characters; otherwise its first characters, a dash and eight
/// hex digits of a hash of the whole name, `max` characters in all. The same input always gives
/// the same output, and two long names that differ anywhere give different outputs (barring a
/// 32-bit hash collision).
pub fn fit(name: &str, max: usize) -> String {
    assert!(max > 9, "room for the hash suffix");
    if name.chars().count() <= max {
        return name.to_owned();
    }
    let hash = fnv1a64(name.as_bytes());
    let keep: String = name.chars().take(max - 9).collect();
    let keep = keep.trim_end_matches(['-', '_', '.']);
    format!("{keep}-{:08x}", (hash >> 32) as u32 ^ hash as u32)
}

/// FNV-1a, 64 bits: small, stable across versions and platforms.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in bytes {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// Checks an EKS cluster name: 1 to 100 characters, a letter or digit first, then letters,
/// digits, `-` and `_`. The reason when it is not.
pub fn check_cluster_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 100 {
        return Err(format!(
            "it has {} characters; EKS allows 1 to 100",
            name.len()
        ));
    }
    if !name.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return Err("it must start with a letter or a digit".into());
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
    {
        return Err(format!(
            "`{bad}` is not allowed; use letters, digits, `-` and `_`"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_names_are_kept() {
        assert_eq!(fit("abc", 64), "abc");
        let exact = "a".repeat(64);
        assert_eq!(fit(&exact, 64), exact);
    }

    #[test]
    fn long_names_are_shortened_deterministically_and_distinctly() {
        let a = format!("{}-one", "x".repeat(100));
        let b = format!("{}-two", "x".repeat(100));
        let fa = fit(&a, 64);
        assert_eq!(fa.chars().count(), 64);
        assert_eq!(fa, fit(&a, 64));
        assert_ne!(fa, fit(&b, 64));
        assert!(fa.starts_with("xxxx"));
    }

    #[test]
    fn hash_is_stable() {
        // Published FNV-1a 64 test vectors.
        assert_eq!(fnv1a64(b""), 0xcbf29ce484222325);
        assert_eq!(fnv1a64(b"a"), 0xaf63dc4c8601ec8c);
    }

    #[test]
    fn cluster_names() {
        assert!(check_cluster_name("eks-fargate").is_ok());
        assert!(check_cluster_name("a_b-9").is_ok());
        assert!(check_cluster_name(&"a".repeat(100)).is_ok());
        assert!(check_cluster_name(&"a".repeat(101)).is_err());
        assert!(check_cluster_name("").is_err());
        assert!(check_cluster_name("-a").is_err());
        assert!(check_cluster_name("a.b").unwrap_err().contains("`.`"));
    }
}
