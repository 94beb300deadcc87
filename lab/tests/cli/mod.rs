//! What the tests of the static_toy example's command line share: running the example and
//! reading what it wrote.
//!
//! `cargo test` builds the examples next to the test binaries; these tests run that build.

// Each test file uses its own part of these.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn example() -> PathBuf {
    example_named("static_toy")
}

/// The build of the lab's example `name`.
pub fn example_named(name: &str) -> PathBuf {
    // target/<profile>/deps/static_toy_<theme>-<hash> → target/<profile>/examples/<name>
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().unwrap().parent().unwrap();
    let path = profile_dir
        .join("examples")
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.exists(),
        "{} is missing: run through `cargo test`",
        path.display()
    );
    path
}

pub fn run(args: &[&str]) -> Output {
    Command::new(example()).args(args).output().unwrap()
}

/// [`run`], which must succeed (else its stderr is the failure message).
pub fn run_ok(args: &[&str]) -> Output {
    let out = run(args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The runs of `DIR/results.json`, one object each.
pub fn results_json(dir: &Path) -> Vec<serde_json::Value> {
    let json = std::fs::read(dir.join("results.json")).unwrap();
    serde_json::from_slice(&json).unwrap()
}

/// Exit code 2 and exactly one line on stderr containing `expected`.
pub fn assert_argument_error(args: &[&str], expected: &str) {
    let out = run(args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{args:?}: {stderr}");
    assert!(stderr.contains(expected), "{args:?}: {stderr}");
}
