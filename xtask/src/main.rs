//! `cargo xtask gen`: write what is generated from the step registry, the IAM list and the clap
//! commands (see the library), or only the files named after it. `cargo xtask check`: name what
//! is stale, exit 1 if anything is. `cargo xtask show NAME`: print one marker block.

use std::process::ExitCode;

fn main() -> ExitCode {
    let root = xtask::repo_root();
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["gen", only @ ..] => match xtask::generate(&root, only) {
            Ok(written) => {
                for path in &written {
                    println!("wrote {}", path.display());
                }
                if written.is_empty() {
                    println!("every generated file is current");
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        },
        ["check"] => match xtask::stale(&root) {
            Ok(stale) if stale.is_empty() => {
                println!("every generated file is current");
                ExitCode::SUCCESS
            }
            Ok(stale) => {
                for path in &stale {
                    eprintln!("stale: {}", path.display());
                }
                eprintln!("run `{}`", xtask::GEN);
                ExitCode::FAILURE
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        },
        ["show", name] => match xtask::render_block(name, None, xtask::markers::WIDTH) {
            Some(text) => {
                print!("{text}");
                ExitCode::SUCCESS
            }
            None => {
                eprintln!(
                    "error: no block is named `{name}`; the names are: {}",
                    xtask::known_names().join(", ")
                );
                ExitCode::from(2)
            }
        },
        _ => {
            eprintln!(
                "usage: cargo xtask gen [PATH]...  write the generated files (make/steps.mk, ci/*.yml, marker \
                 blocks), or only those PATHs\n       cargo xtask check          name the stale ones, \
                 exit 1 if any\n       cargo xtask show NAME      print the block NAME (e.g. usage:eks-cluster)"
            );
            ExitCode::from(2)
        }
    }
}
