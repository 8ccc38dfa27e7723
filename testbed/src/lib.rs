//! Dev-only test bed: the moto AWS emulator started on a free loopback port for a test and
//! stopped when the test ends, helpers to run our binaries against it, to seed what a test needs
//! through the AWS API, and to see which calls a binary made.
//!
//! The Python tools live in the venv that `make venv` (tools/setup-venv.sh) makes; a test that
//! needs one fails with that advice when it is missing, never skips.

use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;

pub mod albsim;
pub mod awsproxy;
pub mod awsrules;
pub mod cli;
pub mod connectproxy;
pub mod controlplane;
pub mod credentials;
pub mod eks;
pub mod enis;
pub mod fargate;
pub mod faults;
pub mod hardened;
pub mod iamrules;
pub mod killsweep;
pub mod kubefaults;
mod loopback;
mod moto;
pub mod run;
pub mod seed;
pub mod sim;
pub mod statecheck;
pub mod webhooksim;

pub use moto::{Call, Moto};

/// The region tests use unless they say otherwise.
pub const REGION: &str = "us-east-2";

/// The repository's top folder.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("testbed/ sits in the repository")
        .to_path_buf()
}

/// The Python venv with moto and the validators: `EKS_FA_VENV`, else `<repo>/.venv`.
pub fn venv() -> PathBuf {
    std::env::var_os("EKS_FA_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join(".venv"))
}

/// A program of the venv; panics with the way to install it when missing.
pub fn venv_tool(name: &str) -> PathBuf {
    let path = venv().join("bin").join(name);
    assert!(
        path.is_file(),
        "{} is missing: run `make venv` (or `make test`, which makes it) to install the test tools from tools/requirements.txt",
        path.display()
    );
    path
}

/// A free TCP port on 127.0.0.1 (the OS picks it; it is free when this returns).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a loopback port")
        .port()
}

/// Runs a validator of the venv and returns (success, stdout + stderr).
pub fn run_venv_tool(name: &str, args: &[&std::ffi::OsStr]) -> (bool, String) {
    let output = Command::new(venv_tool(name))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {name}: {e}"));
    let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
    let mut err = String::new();
    let _ = (&output.stderr[..]).read_to_string(&mut err);
    text.push_str(&err);
    (output.status.success(), text)
}
