//! Helpers shared by the workspace's tests: finding data that lives outside the repository.
//!
//! Tests that need the full training data (or other shared material) call [`shared_path`]. It reads
//! the location from an environment variable, defaulting to the `shared/` folder beside the
//! checkout. When the material is missing the test is skipped with a message, except under CI
//! (`CI=true`), where a missing input is a failure rather than a silent pass.
//!
//! ```no_run
//! let Some(dir) = test_support::shared_path("PHISHING_DATA_DIR", "data/phishing") else {
//!     return; // skipped, with a message on stderr
//! };
//! assert!(dir.join("train.txt").exists());
//! ```
#![deny(missing_docs)]

use std::path::{Path, PathBuf};

/// The workspace root (the folder holding the top-level `Cargo.toml`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("test-support lives two levels below the workspace root")
        .to_path_buf()
}

/// Locates shared material: `$<env_var>` if set, else `<workspace>/../shared/<default_rel>`.
///
/// Returns `None` (after printing why) when it does not exist and this is not CI.
///
/// # Panics
/// Under CI (`CI=true`) when the path does not exist.
pub fn shared_path(env_var: &str, default_rel: &str) -> Option<PathBuf> {
    let path = match std::env::var_os(env_var) {
        Some(p) => PathBuf::from(p),
        None => workspace_root().join("..").join("shared").join(default_rel),
    };
    if path.exists() {
        return Some(path);
    }
    skip_or_fail(&format!(
        "`{}` does not exist; set {env_var} to the location of shared/{default_rel}",
        path.display()
    ));
    None
}

/// Whether this is a CI run (`CI=true` or `CI=1`).
pub fn on_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// Reports that a test cannot run because of `msg`: a skip with the message on stderr, or under
/// CI ([`on_ci`]) a failure.
///
/// # Panics
/// Under CI.
pub fn skip_or_fail(msg: &str) {
    if on_ci() {
        panic!("{msg} (required under CI)");
    }
    eprintln!("SKIPPED: {msg}");
}
