//! Marker blocks: a line `<!-- generated:NAME -->` and a line `<!-- /generated:NAME -->`, with
//! the generated text between them, in Markdown or in a `//!` block (the marker lines then start
//! with `//! `, and so does every generated line). Everything outside the blocks is left as it is.
//!
//! The names (`crate::render_block`):
//! - `usage:BINARY`: `BINARY --help` and the help of each of its subcommands (a `text` fence);
//! - `synopsis`: one usage line per binary and subcommand, with every flag (a `text` fence);
//! - `iam:BINARY`: the IAM permissions BINARY needs (a paragraph); `iam` in a binary's
//!   `main.rs`: its own;
//! - `ci-jobs`: the CI jobs in order, install and teardown (an indented block).

/// What a line that is a marker looks like: `<!-- generated:NAME -->`.
const OPEN: (&str, &str) = ("<!-- generated:", " -->");
const CLOSE: (&str, &str) = ("<!-- /generated:", " -->");

/// Line prefixes a marker may have (Markdown, a `//!` block).
const PREFIXES: [&str; 2] = ["//! ", ""];

/// Widest line of a generated block, prefix included.
pub const WIDTH: usize = 100;

/// `(prefix, name)` when `line` is a marker of the given kind.
fn marker<'a>(line: &'a str, kind: (&str, &str)) -> Option<(&'static str, &'a str)> {
    PREFIXES.iter().find_map(|prefix| {
        let name = line
            .strip_prefix(prefix)?
            .strip_prefix(kind.0)?
            .strip_suffix(kind.1)?;
        (!name.is_empty() && !name.contains(char::is_whitespace)).then_some((*prefix, name))
    })
}

/// The names of the blocks in `text`, in order.
pub fn names(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| marker(l, OPEN))
        .map(|(_, name)| name.to_string())
        .collect()
}

/// `text` with every block filled with `render(name, width)`, `width` being what is left of
/// [`WIDTH`] after the line prefix. Fails on a block without its closing line, a block inside
/// another, or a name `render` does not know (`None`).
pub fn fill(text: &str, render: impl Fn(&str, usize) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut open: Option<(&str, &str, usize)> = None;
    for (i, line) in text.split_inclusive('\n').enumerate() {
        let bare = line.trim_end_matches('\n');
        match open {
            None => {
                out.push_str(line);
                if let Some((prefix, name)) = marker(bare, OPEN) {
                    open = Some((prefix, name, i + 1));
                }
                if let Some((_, name)) = marker(bare, CLOSE) {
                    return Err(format!("line {}: `{name}` closes no block", i + 1));
                }
            }
            Some((prefix, name, at)) => {
                if let Some((_, inner)) = marker(bare, OPEN) {
                    return Err(format!(
                        "line {}: block `{inner}` inside block `{name}` (line {at})",
                        i + 1
                    ));
                }
                let Some((_, closing)) = marker(bare, CLOSE) else {
                    continue; // the old content, replaced
                };
                if closing != name {
                    return Err(format!(
                        "line {}: `{closing}` closes block `{name}` (line {at})",
                        i + 1
                    ));
                }
                let body = render(name, WIDTH - prefix.len()).ok_or_else(|| {
                    format!(
                        "line {at}: no generated block is named `{name}`; the names are: {}",
                        crate::known_names().join(", ")
                    )
                })?;
                for body_line in body.lines() {
                    let full = format!("{prefix}{body_line}");
                    out.push_str(full.trim_end());
                    out.push('\n');
                }
                out.push_str(line);
                open = None;
            }
        }
    }
    match open {
        Some((_, name, at)) => Err(format!(
            "line {at}: block `{name}` has no closing line `<!-- /generated:{name} -->`"
        )),
        None => Ok(out),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(name: &str, width: usize) -> Option<String> {
        match name {
            "two" => Some(format!("first {width}\n\nsecond\n")),
            "empty" => Some(String::new()),
            _ => None,
        }
    }

    const DOC: &str = "\
# Title

<!-- generated:two -->
stale text
<!-- /generated:two -->
Prose naming `<!-- generated:two -->` in a line is no marker.
<!-- generated:empty -->
<!-- /generated:empty -->
";

    #[test]
    fn blocks_are_filled_and_the_rest_kept() {
        let filled = fill(DOC, render).unwrap();
        assert_eq!(
            filled,
            "\
# Title

<!-- generated:two -->
first 100

second
<!-- /generated:two -->
Prose naming `<!-- generated:two -->` in a line is no marker.
<!-- generated:empty -->
<!-- /generated:empty -->
"
        );
        assert_eq!(
            fill(&filled, render).unwrap(),
            filled,
            "filling is idempotent"
        );
        assert_eq!(names(DOC), ["two", "empty"]);
    }

    #[test]
    fn doc_comment_blocks_keep_their_prefix() {
        let text = "//! Top.\n//!\n//! <!-- generated:two -->\n//! old\n//! <!-- /generated:two -->\nfn main() {}\n";
        assert_eq!(
            fill(text, render).unwrap(),
            "//! Top.\n//!\n//! <!-- generated:two -->\n//! first 96\n//!\n//! second\n//! <!-- /generated:two -->\nfn main() {}\n"
        );
    }

    #[test]
    fn broken_blocks_are_refused() {
        let unknown = fill(
            "<!-- generated:nope -->\n<!-- /generated:nope -->\n",
            render,
        );
        assert!(
            unknown
                .as_ref()
                .is_err_and(|e| e.contains("`nope`") && e.contains("usage:eks-cluster")),
            "{unknown:?}"
        );
        let unclosed = fill("<!-- generated:two -->\ntext\n", render);
        assert!(unclosed.is_err_and(|e| e.contains("no closing line")));
        let crossed = fill(
            "<!-- generated:two -->\n<!-- /generated:empty -->\n",
            render,
        );
        assert!(crossed.is_err_and(|e| e.contains("closes block `two`")));
        let nested = fill(
            "<!-- generated:two -->\n<!-- generated:empty -->\n<!-- /generated:empty -->\n<!-- /generated:two -->\n",
            render,
        );
        assert!(nested.is_err_and(|e| e.contains("inside block `two`")));
        let stray = fill("<!-- /generated:two -->\n", render);
        assert!(stray.is_err_and(|e| e.contains("closes no block")));
    }
}
