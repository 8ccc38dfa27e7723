//! The README's usage blocks and the binaries' `--help` agree.
//!
//! For every binary (the steps of `common::steps::STEPS`, and `eks-preflight`) the test runs
//! `BIN --help` and `BIN SUB --help` for each subcommand, and reads `README.md`. It compares flag
//! sets both ways:
//!
//! - every long flag `--help` lists (but `--help`/`--version`) is named in the binary's own README
//!   section (`## \`BIN\`: …`; for `eks-preflight`, "Real use on AWS"): a subcommand's own flags
//!   on a command line of that subcommand, the flags every subcommand shares (clap's global ones)
//!   on any command line of the binary, or, for the steps, in the table "Flags every step shares";
//!   a flag counts as named when its short form is (`-v` for `--verbose`);
//! - every subcommand `--help` lists is shown on a command line of that section;
//! - every flag and subcommand a README command line gives a binary, in any section, exists in
//!   that binary's (or subcommand's) `--help`, before or after the subcommand as clap takes it;
//! - every flag of the "Flags every step shares" table is in every step's `--help`.
//!
//! Only command lines are compared: the lines of the README's code blocks (indented or fenced)
//! whose command, or a command of a pipe in them (` | `), is one of the binaries, with their
//! continuation lines (after a trailing `\`, or starting with `[` or `-`). Prose is left out on
//! purpose: it names flags of other tools (`aws ec2 modify-vpc-attribute --vpc-id`, curl's
//! `--connect-to`) and flags of one binary in another's section (`eks-cluster create
//! --namespace` in `eks-deploy`'s), so exact flag sets cannot be drawn from it.
//!
//! `doctored_readmes_are_caught` checks on a small made-up README and help that the comparison
//! does fail: on a flag removed, a flag invented or given to the wrong subcommand, a subcommand
//! missing or invented, a shared flag no step has; `readme_usage_matches_help` also runs it on
//! the real README with one flag removed and one invented.
//!
//! Needs the built binaries: `cargo build --bins` (or `make test`) first.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

/// The binaries that are not steps, with the heading (start of the `## ` line) of the README
/// section that shows their usage. A step's section is `## \`BIN\`…`; the steps come from the
/// registry (`common::steps::STEPS`), so a new step is checked with no change here.
const OTHERS: [(&str, &str); 1] = [("eks-preflight", "## Real use on AWS")];

/// The step binaries, in install order.
fn steps() -> Vec<&'static str> {
    common::steps::STEPS.iter().map(|s| s.binary).collect()
}

/// Every binary with the heading of its README section.
fn homes() -> Vec<(&'static str, String)> {
    steps()
        .into_iter()
        .map(|bin| (bin, format!("## `{bin}`")))
        .chain(OTHERS.iter().map(|(bin, h)| (*bin, h.to_string())))
        .collect()
}

/// The section whose table lists the flags every step shares.
const SHARED: &str = "## Flags every step shares";

/// clap's own flags, not documented per binary.
const BUILTIN: [&str; 2] = ["--help", "--version"];

/// One option of a `--help`: its names (`-o`, `--output`) and whether it takes a value.
#[derive(Debug, Clone)]
struct Opt {
    names: Vec<String>,
    takes_value: bool,
}

/// What one `--help` lists.
#[derive(Debug, Clone, Default)]
struct Help {
    opts: Vec<Opt>,
    commands: Vec<String>,
}

impl Help {
    /// Parses clap's help text: the `Commands:` and `Options:` lists.
    fn parse(text: &str) -> Help {
        let mut help = Help::default();
        let mut list = "";
        for line in text.lines() {
            if !line.starts_with(' ') {
                list = line.trim_end();
                continue;
            }
            let indent = line.len() - line.trim_start().len();
            let entry = line.trim_start();
            // Entries are indented by 2 to 6 spaces; wrapped descriptions by more.
            if indent > 6 {
                continue;
            }
            match list {
                "Commands:" => {
                    let name = entry.split_whitespace().next().unwrap_or_default();
                    if name != "help" {
                        help.commands.push(name.to_string());
                    }
                }
                "Options:" if entry.starts_with('-') => {
                    let spec = entry.split("  ").next().unwrap_or_default();
                    let mut opt = Opt {
                        names: Vec::new(),
                        takes_value: false,
                    };
                    for word in spec.split_whitespace() {
                        if word.starts_with('<') {
                            opt.takes_value = true;
                        } else if word.starts_with('-') {
                            let name = word.trim_end_matches(',').trim_end_matches("...");
                            opt.names.push(name.to_string());
                        }
                    }
                    help.opts.push(opt);
                }
                _ => {}
            }
        }
        help
    }

    fn find(&self, name: &str) -> Option<&Opt> {
        self.opts.iter().find(|o| o.names.iter().any(|n| n == name))
    }

    fn longs(&self) -> impl Iterator<Item = (&str, &Opt)> {
        self.opts.iter().flat_map(|o| {
            o.names
                .iter()
                .filter(|n| n.starts_with("--") && !BUILTIN.contains(&n.as_str()))
                .map(move |n| (n.as_str(), o))
        })
    }
}

/// A binary's `--help` and each subcommand's.
#[derive(Debug, Clone, Default)]
struct Cli {
    top: Help,
    subs: BTreeMap<String, Help>,
}

impl Cli {
    /// Runs `bin --help` and `bin SUB --help` for every subcommand it lists.
    fn of(bin: &Path) -> Cli {
        let top = Help::parse(&help_text(bin, &[]));
        let subs = top
            .commands
            .iter()
            .map(|sub| (sub.clone(), Help::parse(&help_text(bin, &[sub]))))
            .collect();
        Cli { top, subs }
    }
}

fn help_text(bin: &Path, sub: &[&str]) -> String {
    let out = Command::new(bin)
        .args(sub)
        .arg("--help")
        .env("COLUMNS", "1000")
        .env_remove("RUST_LOG")
        .output()
        .unwrap_or_else(|e| panic!("{} cannot run: {e}", bin.display()));
    assert!(
        out.status.success(),
        "{} {} --help exited {}: {}",
        bin.display(),
        sub.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("help is UTF-8")
}

/// One command of a README command line, as clap would take it.
#[derive(Debug, Clone)]
struct Use {
    bin: String,
    sub: Option<String>,
    /// (the subcommand it follows, or None before any, flag as written).
    flags: Vec<(Option<String>, String)>,
    line: String,
}

/// The README's `## ` sections: heading line and body.
fn sections(readme: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = vec![(String::new(), String::new())];
    let mut fenced = false;
    for line in readme.lines() {
        if line.starts_with("```") {
            fenced = !fenced;
        }
        if !fenced && line.starts_with("## ") {
            out.push((line.to_string(), String::new()));
            continue;
        }
        let body = &mut out.last_mut().expect("a section").1;
        body.push_str(line);
        body.push('\n');
    }
    out
}

/// The lines of a body's code blocks: fenced, or indented by 4 spaces after a blank line.
fn code_lines(body: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut fenced = false;
    let mut indented = false;
    let mut after_blank = true;
    for line in body.lines() {
        if line.starts_with("```") {
            fenced = !fenced;
            indented = false;
            after_blank = false;
            continue;
        }
        if fenced {
            out.push(line.to_string());
            continue;
        }
        if line.trim().is_empty() {
            after_blank = true;
            continue;
        }
        indented = line.starts_with("    ") && (indented || after_blank);
        after_blank = false;
        if indented {
            out.push(line.to_string());
        }
    }
    out
}

/// Whole commands: continuation lines joined, comments and shell prompts dropped.
fn commands(code: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut continues = false;
    for line in code {
        let text = line.trim();
        let text = match text.find(" #") {
            Some(at) => text[..at].trim_end(),
            None => text,
        };
        if text.is_empty() || text.starts_with('#') {
            continues = false;
            continue;
        }
        let (text, more) = match text.strip_suffix('\\') {
            Some(t) => (t.trim_end(), true),
            None => (text, false),
        };
        let joins = continues || text.starts_with('[') || text.starts_with('-');
        match out.last_mut() {
            Some(last) if joins => {
                last.push(' ');
                last.push_str(text);
            }
            _ => out.push(text.trim_start_matches("$ ").to_string()),
        }
        continues = more;
    }
    out
}

/// The words of a command segment: `<placeholders with spaces>` made one word, usage
/// brackets and `...` dropped, redirections and their targets dropped.
fn words(segment: &str) -> Vec<String> {
    let mut joined = String::new();
    let mut in_angle = false;
    let chars: Vec<char> = segment.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        match c {
            '<' if chars.get(i + 1).is_some_and(|n| !n.is_whitespace()) => {
                in_angle = true;
                joined.push(c);
            }
            '>' if in_angle => {
                in_angle = false;
                joined.push(c);
            }
            ' ' if in_angle => joined.push('_'),
            _ => joined.push(c),
        }
    }
    let mut out = Vec::new();
    let mut skip = false;
    for word in joined.split_whitespace() {
        if skip {
            skip = false;
            continue;
        }
        if matches!(word, "<" | ">" | ">>" | "2>" | "2>&1" | "&&" | ";") {
            skip = word != "2>&1";
            continue;
        }
        let word = word.trim_start_matches('[').trim_end_matches("...");
        let word = word.trim_end_matches(']').trim_end_matches("...");
        if word.starts_with('-') {
            // Flags given as alternatives: `-v|-q`.
            out.extend(
                word.split('|')
                    .filter(|w| !w.is_empty())
                    .map(str::to_string),
            );
        } else if !word.is_empty() {
            out.push(word.to_string());
        }
    }
    out
}

/// Every use of a known binary in these commands (each segment of a pipe on its own).
fn uses(commands: &[String], clis: &BTreeMap<String, Cli>) -> Vec<Use> {
    let mut out = Vec::new();
    for command in commands {
        for segment in command.split(" | ") {
            let words = words(segment);
            let Some(bin) = words.first() else { continue };
            let Some(cli) = clis.get(bin.as_str()) else {
                continue;
            };
            let mut used = Use {
                bin: bin.clone(),
                sub: None,
                flags: Vec::new(),
                line: segment.trim().to_string(),
            };
            let mut i = 1;
            while i < words.len() {
                let word = &words[i];
                if word.starts_with('-') && word.len() > 1 {
                    let name = word.split('=').next().unwrap_or_default().to_string();
                    let help = match &used.sub {
                        Some(sub) => cli.subs.get(sub).unwrap_or(&cli.top),
                        None => &cli.top,
                    };
                    let takes_value = match help.find(&name) {
                        Some(opt) => opt.takes_value && !word.contains('='),
                        // Unknown: take the next word as its value unless it looks like more.
                        None => words.get(i + 1).is_some_and(|next| {
                            !next.starts_with('-') && !cli.subs.contains_key(next.as_str())
                        }),
                    };
                    used.flags.push((used.sub.clone(), name));
                    if takes_value {
                        i += 1;
                    }
                } else if used.sub.is_none() && !cli.subs.is_empty() {
                    used.sub = Some(word.clone());
                }
                i += 1;
            }
            out.push(used);
        }
    }
    out
}

/// The flags (long and short) the shared flags table names.
fn shared_flags(body: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for line in body.lines().filter(|l| l.starts_with('|')) {
        let first_cell = line.split('|').nth(1).unwrap_or_default();
        for (i, span) in first_cell.split('`').enumerate() {
            if i % 2 == 0 {
                continue;
            }
            let Some(flag) = span.split_whitespace().next() else {
                continue;
            };
            if flag.starts_with('-') {
                out.insert(short_of_repeat(flag));
            }
        }
    }
    out
}

/// `-vv` is `-v` given twice.
fn short_of_repeat(flag: &str) -> String {
    let letters = flag.trim_start_matches('-');
    let first = letters.chars().next();
    if !flag.starts_with("--") && letters.len() > 1 && letters.chars().all(|c| Some(c) == first) {
        format!("-{}", letters.chars().next().expect("a letter"))
    } else {
        flag.to_string()
    }
}

/// Every disagreement between `readme` and the binaries' helps, one line each.
fn disagreements(
    readme: &str,
    clis: &BTreeMap<String, Cli>,
    homes: &[(&str, String)],
    steps: &[&str],
) -> Vec<String> {
    let mut problems = Vec::new();
    let sections = sections(readme);
    let shared = sections
        .iter()
        .find(|(h, _)| h.starts_with(SHARED))
        .map(|(_, body)| shared_flags(body))
        .unwrap_or_default();

    // README -> help, on every command line of the README.
    let all: Vec<String> = sections.iter().flat_map(|(_, b)| code_lines(b)).collect();
    for used in uses(&commands(&all), clis) {
        let cli = &clis[&used.bin];
        let mut sub_help = None;
        if let Some(sub) = &used.sub {
            match cli.subs.get(sub) {
                Some(help) => sub_help = Some(help),
                None => problems.push(format!(
                    "README runs `{} {sub}`, a subcommand `{} --help` does not list: {}",
                    used.bin, used.bin, used.line
                )),
            }
        }
        for (after, flag) in &used.flags {
            let (help, shown) = match (after, sub_help) {
                (Some(sub), Some(help)) => (help, format!("{} {sub}", used.bin)),
                (Some(_), None) => continue,
                (None, _) => (&cli.top, used.bin.clone()),
            };
            if help.find(flag).is_none() {
                problems.push(format!(
                    "README gives `{shown}` the flag `{flag}`, which `{shown} --help` does not list: {}",
                    used.line
                ));
            }
        }
    }

    // help -> README, on the command lines of each binary's own section.
    for (bin, heading) in homes {
        let Some(cli) = clis.get(*bin) else { continue };
        let Some((_, body)) = sections.iter().find(|(h, _)| h.starts_with(heading)) else {
            problems.push(format!("README has no section `{heading}` for {bin}"));
            continue;
        };
        let home: Vec<Use> = uses(&commands(&code_lines(body)), clis)
            .into_iter()
            .filter(|u| u.bin == *bin)
            .collect();
        if home.is_empty() {
            problems.push(format!(
                "README section `{heading}` shows no command line of {bin}"
            ));
            continue;
        }
        let step = steps.contains(bin);
        let named = |opt: &Opt, sub: Option<&str>| {
            opt.names.iter().any(|n| {
                (step && shared.contains(n))
                    || home.iter().any(|u| {
                        sub.is_none_or(|s| u.sub.as_deref() == Some(s))
                            && u.flags.iter().any(|(_, f)| f == n)
                    })
            })
        };
        for (long, opt) in cli.top.longs() {
            if !named(opt, None) {
                problems.push(format!(
                    "`{bin} --help` lists `{long}`, which README section `{heading}` does not name"
                ));
            }
        }
        for (sub, help) in &cli.subs {
            if !home.iter().any(|u| u.sub.as_deref() == Some(sub.as_str())) {
                problems.push(format!(
                    "`{bin} --help` lists the subcommand `{sub}`, which README section `{heading}` does not show"
                ));
            }
            for (long, opt) in help.longs() {
                if cli.top.find(long).is_some() {
                    continue; // global: checked above
                }
                if !named(opt, Some(sub)) {
                    problems.push(format!(
                        "`{bin} {sub} --help` lists `{long}`, which README section `{heading}` does not name for `{sub}`"
                    ));
                }
            }
        }
    }

    // The shared table -> every step's help.
    for bin in steps {
        let Some(cli) = clis.get(*bin) else { continue };
        for flag in &shared {
            if cli.top.find(flag).is_none() {
                problems.push(format!(
                    "README's \"Flags every step shares\" names `{flag}`, which `{bin} --help` does not list"
                ));
            }
        }
    }
    problems
}

#[test]
fn readme_usage_matches_help() {
    let dir = eks_fa_e2e::bin_dir();
    let homes = homes();
    let steps = steps();
    let clis: BTreeMap<String, Cli> = homes
        .iter()
        .map(|(bin, _)| {
            let path = dir.join(bin);
            assert!(
                path.is_file(),
                "{} is missing: run `cargo build --bins` first",
                path.display()
            );
            (bin.to_string(), Cli::of(&path))
        })
        .collect();
    for (bin, cli) in &clis {
        assert!(
            cli.top.longs().count() > 2,
            "no flags read from `{bin} --help`: {cli:?}"
        );
    }
    let readme_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md");
    let readme = std::fs::read_to_string(&readme_path).expect("README.md");

    let problems = disagreements(&readme, &clis, &homes, &steps);
    assert!(
        problems.is_empty(),
        "README.md and --help disagree:\n{}",
        problems.join("\n")
    );

    // The real README, doctored: a flag dropped from `eks-cluster create`'s usage and one made up
    // for `eks-oidc ensure` are both found.
    let doctored = readme.replace("[--kubernetes-version 1.35]", "").replace(
        "ensure [--cluster NAME]",
        "ensure [--cluster NAME] [--no-such-flag X]",
    );
    assert_ne!(doctored, readme, "the doctoring found its text");
    let problems = disagreements(&doctored, &clis, &homes, &steps);
    assert!(
        problems
            .iter()
            .any(|p| p.contains("`--kubernetes-version`")),
        "{problems:#?}"
    );
    assert!(
        problems.iter().any(|p| p.contains("`--no-such-flag`")),
        "{problems:#?}"
    );
}

/// A made-up binary `tool` with subcommands `make` (own flag `--size`) and `drop`.
fn tool() -> BTreeMap<String, Cli> {
    let top = "\
Usage: tool [OPTIONS] <COMMAND>

Commands:
  make  Make it
  drop  Drop it
  help  Print this message or the help of the given subcommand(s)

Options:
      --state <FILE>  The state, wrapped over a line that
                      starts --like-a-flag
  -v, --verbose...    More output
  -h, --help          Print help
  -V, --version       Print version
";
    let make = "\
Usage: tool make [OPTIONS]

Options:
      --size <N>      How big
      --state <FILE>  The state
  -v, --verbose...    More output
  -h, --help          Print help
";
    let drop = "\
Usage: tool drop [OPTIONS]

Options:
      --state <FILE>  The state
      --force         Even so
  -v, --verbose...    More output
  -h, --help          Print help
";
    let cli = Cli {
        top: Help::parse(top),
        subs: [
            ("make".to_string(), Help::parse(make)),
            ("drop".to_string(), Help::parse(drop)),
        ]
        .into(),
    };
    [("tool".to_string(), cli)].into()
}

const TOOL_README: &str = "\
# tool

## Flags every step shares

| flag | meaning |
|---|---|
| `-v`, `-vv` | more |

## `tool`: a tool

Prose that names `--frobnicate` of some other program.

    tool [--state FILE] make [--size N]
    tool [--state FILE] drop [--force]

Examples:

    # a comment --with-a-flag
    tool --state s.json make \\
      --size 3 | tool drop > out.json
";

#[test]
fn doctored_readmes_are_caught() {
    let clis = tool();
    let homes = [("tool", "## `tool`".to_string())];
    assert!(clis["tool"].top.find("--like-a-flag").is_none());
    let clean = disagreements(TOOL_README, &clis, &homes, &["tool"]);
    assert!(clean.is_empty(), "{clean:#?}");

    let cases = [
        // A flag removed from the usage.
        (TOOL_README.replace(" [--force]", ""), "`--force`"),
        // A flag invented.
        (
            TOOL_README.replace("[--size N]", "[--size N] [--colour C]"),
            "`--colour`",
        ),
        // A subcommand's flag given to the other subcommand.
        (
            TOOL_README.replace("drop [--force]", "drop [--force] [--size N]"),
            "`tool drop` the flag `--size`",
        ),
        // A subcommand missing.
        (
            TOOL_README
                .replace("    tool [--state FILE] drop [--force]\n", "")
                .replace(" | tool drop", ""),
            "the subcommand `drop`",
        ),
        // A subcommand invented.
        (
            TOOL_README.replace("tool drop >", "tool burn >"),
            "`tool burn`",
        ),
        // A shared flag no step has.
        (
            TOOL_README.replace("| `-v`, `-vv` |", "| `-v`, `-vv` / `--loud` |"),
            "names `--loud`",
        ),
    ];
    for (readme, expected) in cases {
        assert_ne!(
            readme, TOOL_README,
            "the doctoring of {expected} found its text"
        );
        let problems = disagreements(&readme, &clis, &homes, &["tool"]);
        assert!(
            problems.iter().any(|p| p.contains(expected)),
            "expected a problem with {expected}, got {problems:#?}"
        );
    }
}
