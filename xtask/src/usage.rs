//! The binaries' usage, from their clap commands (`<crate>::cli::command()`), rendered at a fixed
//! width so the text does not depend on the terminal.

use clap::{Arg, ArgAction, Command};

/// Width of the rendered help.
const HELP_WIDTH: usize = 100;

/// The binaries with a usage: the steps in registry order, then `eks-preflight`.
pub fn binaries() -> Vec<&'static str> {
    common::steps::binaries().chain(["eks-preflight"]).collect()
}

/// The clap command of `binary`; `None` for one this generator does not know (a new step: add
/// its crate to xtask's dependencies and here).
pub fn command(binary: &str) -> Option<Command> {
    let command = match binary {
        "eks-cluster" => eks_cluster::cli::command(),
        "eks-oidc" => eks_oidc::cli::command(),
        "irsa" => irsa::cli::command(),
        "eks-sg-stack" => eks_sg_stack::cli::command(),
        "eks-patch" => eks_patch::cli::command(),
        "eks-deploy" => eks_deploy::cli::command(),
        "eks-preflight" => eks_preflight::cli::command(),
        _ => return None,
    };
    let mut command = command.term_width(HELP_WIDTH).max_term_width(HELP_WIDTH);
    command.build();
    Some(command)
}

/// The subcommands a user runs (not clap's `help`).
fn subcommands(command: &Command) -> impl Iterator<Item = &Command> {
    command
        .get_subcommands()
        .filter(|s| !s.is_hide_set() && s.get_name() != "help")
}

/// `$ BIN --help` and its text, then the same for each subcommand.
pub fn help(binary: &str) -> Option<String> {
    let mut command = command(binary)?;
    let mut out = format!("$ {binary} --help\n{}", command.render_help());
    let names: Vec<String> = subcommands(&command)
        .map(|s| s.get_name().to_string())
        .collect();
    for name in names {
        let sub = command.find_subcommand_mut(&name).expect("listed");
        out.push_str(&format!(
            "\n$ {binary} {name} --help\n{}",
            sub.render_help()
        ));
    }
    Some(rewrap(&out, HELP_WIDTH))
}

/// `text` with its lines longer than `width` wrapped as clap's `wrap_help` would (a feature
/// this workspace leaves off, so the binaries' `--help` does not depend on the terminal): an
/// entry of a list (`  --flag <V>  What it does`) continues under its description, other lines
/// under their own indent.
fn rewrap(text: &str, width: usize) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        if line.chars().count() <= width {
            out.push_str(line);
            out.push('\n');
            continue;
        }
        let lead = line.len() - line.trim_start().len();
        let column = if lead > 0 {
            // The description starts after the first run of two or more spaces.
            line[lead..]
                .find("  ")
                .map(|gap| {
                    let after = lead + gap;
                    after + line[after..].len() - line[after..].trim_start().len()
                })
                .unwrap_or(lead)
        } else {
            0
        };
        let (head, body) = line.split_at(column);
        for (i, part) in crate::wrap(body.split_whitespace(), width - column)
            .iter()
            .enumerate()
        {
            if i == 0 {
                out.push_str(head);
            } else {
                out.push_str(&" ".repeat(column));
            }
            out.push_str(part);
            out.push('\n');
        }
    }
    out
}

/// One line per binary and subcommand with every flag it takes (the flags every step shares,
/// `common::CommonArgs`, left out: the README has them in a table), wrapped at `width` with the
/// continuation indented.
pub fn synopsis(width: usize) -> String {
    let shared = shared_flags();
    let mut lines = Vec::new();
    for binary in binaries() {
        let Some(command) = command(binary) else {
            lines.push(format!(
                "{binary}: no clap command known to xtask (xtask/src/usage.rs)"
            ));
            continue;
        };
        let is_step = binary != "eks-preflight";
        let skip = |arg: &Arg| is_step && shared.iter().any(|s| s == arg.get_id().as_str());
        let own: Vec<String> = command
            .get_arguments()
            .filter(|a| shown(a) && !skip(a))
            .map(arg_usage)
            .collect();
        let subs: Vec<&Command> = subcommands(&command).collect();
        if subs.is_empty() || !own.is_empty() {
            let mut words = vec![binary.to_string()];
            words.extend(own);
            if !subs.is_empty() {
                let required = command.is_subcommand_required_set();
                words.push(if required { "<COMMAND>" } else { "[COMMAND]" }.to_string());
            }
            lines.extend(indented(&words, width));
        }
        for sub in subs {
            let mut words = vec![format!("{binary} {}", sub.get_name())];
            words.extend(
                sub.get_arguments()
                    .filter(|a| shown(a) && !a.is_global_set() && !skip(a))
                    .map(arg_usage),
            );
            lines.extend(indented(&words, width));
        }
    }
    lines.join("\n") + "\n"
}

/// The ids of the flags of `common::CommonArgs`.
fn shared_flags() -> Vec<String> {
    use clap::Args;
    common::CommonArgs::augment_args(Command::new("shared"))
        .get_arguments()
        .map(|a| a.get_id().to_string())
        .collect()
}

fn shown(arg: &Arg) -> bool {
    !arg.is_hide_set() && !matches!(arg.get_id().as_str(), "help" | "version")
}

/// `[--flag VALUE]...` as a usage line shows `arg`.
fn arg_usage(arg: &Arg) -> String {
    let repeated = matches!(arg.get_action(), ArgAction::Append | ArgAction::Count);
    let value = || {
        arg.get_value_names()
            .and_then(|v| v.first())
            .map_or_else(|| arg.get_id().as_str().to_uppercase(), ToString::to_string)
    };
    let text = if arg.is_positional() {
        let name = value();
        if arg.is_required_set() {
            format!("<{name}>")
        } else {
            name
        }
    } else {
        let name = match (arg.get_long(), arg.get_short()) {
            (Some(long), _) => format!("--{long}"),
            (None, Some(short)) => format!("-{short}"),
            (None, None) => arg.get_id().to_string(),
        };
        if arg.get_action().takes_values() {
            format!("{name} {}", value())
        } else {
            name
        }
    };
    let dots = if repeated { "..." } else { "" };
    if arg.is_required_set() {
        format!("{text}{dots}")
    } else {
        format!("[{text}]{dots}")
    }
}

/// `words` (each kept whole) in lines of `width`, the later ones indented by four.
fn indented(words: &[String], width: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    let mut line = String::new();
    for word in words {
        if !line.is_empty() && line.len() + 1 + word.len() > width {
            lines.push(std::mem::take(&mut line));
            line.push_str("   ");
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    lines.push(line);
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every binary has a command here (a new step without one fails this).
    #[test]
    fn every_binary_has_its_command() {
        for binary in binaries() {
            let command = command(binary).unwrap_or_else(|| panic!("no clap command for {binary}"));
            assert_eq!(command.get_name(), binary);
        }
    }

    #[test]
    fn help_shows_each_subcommand_at_a_fixed_width() {
        let text = help("eks-oidc").unwrap();
        assert!(text.starts_with("$ eks-oidc --help\n"), "{text}");
        assert!(text.contains("\n$ eks-oidc ensure --help\n"), "{text}");
        assert!(text.contains("Usage: eks-oidc ensure [OPTIONS]"), "{text}");
        assert!(!text.contains("$ eks-oidc help --help"), "{text}");
        assert!(
            text.lines().all(|l| l.chars().count() <= HELP_WIDTH),
            "{text}"
        );
        assert!(!text.contains('\u{1b}'), "no terminal colours");
    }

    #[test]
    fn long_lines_wrap_under_their_description() {
        let text = "About it.\n  -v, --verbose  one two three four five\nplain words that go on\n";
        assert_eq!(
            rewrap(text, 28),
            "About it.\n  -v, --verbose  one two\n                 three four\n                 five\nplain words that go on\n"
        );
    }

    #[test]
    fn synopsis_lists_own_flags_not_the_shared_ones() {
        let text = synopsis(100);
        let ensure = text
            .lines()
            .find(|l| l.starts_with("eks-oidc ensure"))
            .unwrap_or_else(|| panic!("{text}"));
        assert!(ensure.contains("[--adopt]"), "{ensure}");
        assert!(!text.contains("--lock-wait"), "{text}");
        assert!(text.contains("eks-preflight [--region REGION]"), "{text}");
        assert!(text.lines().all(|l| l.len() <= 100), "{text}");
    }

    #[test]
    fn arg_usage_brackets_and_repeats() {
        let arg = Arg::new("ns")
            .long("namespace")
            .value_name("NS")
            .action(ArgAction::Append);
        assert_eq!(arg_usage(&arg), "[--namespace NS]...");
        let arg = Arg::new("name")
            .long("sa-name")
            .value_name("SA")
            .required(true);
        assert_eq!(arg_usage(&arg), "--sa-name SA");
        let arg = Arg::new("files")
            .value_name("FILE")
            .action(ArgAction::Append);
        assert_eq!(arg_usage(&arg), "[FILE]...");
        let arg = Arg::new("shell").value_name("SHELL").required(true);
        assert_eq!(arg_usage(&arg), "<SHELL>");
        let arg = Arg::new("force").long("force").action(ArgAction::SetTrue);
        assert_eq!(arg_usage(&arg), "[--force]");
    }
}
