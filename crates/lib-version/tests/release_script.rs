//! The release flow: `scripts/release.sh X.Y.Z` bumps the workspace version, commits and tags.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

fn run(dir: &Path, cmd: &str, args: &[&str]) -> Output {
    Command::new(cmd)
        .args(args)
        .current_dir(dir)
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@example.com")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@example.com")
        .output()
        .unwrap()
}

/// A throwaway git repository with a workspace manifest at version 0.1.0.
fn scratch_repo(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("lib-version-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("scripts")).unwrap();
    std::fs::copy(
        repo_root().join("scripts/release.sh"),
        dir.join("scripts/release.sh"),
    )
    .unwrap();
    std::fs::write(
        dir.join("Cargo.toml"),
        "[workspace]\nmembers = []\n\n[workspace.package]\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[workspace.dependencies]\nfoo = { version = \"9.9.9\" }\n",
    )
    .unwrap();
    assert!(run(&dir, "git", &["init", "-q"]).status.success());
    run(&dir, "git", &["add", "."]);
    assert!(run(&dir, "git", &["commit", "-q", "-m", "init"])
        .status
        .success());
    dir
}

#[test]
fn release_bumps_version_commits_and_tags() {
    let dir = scratch_repo("bump");
    let out = run(&dir, "bash", &["scripts/release.sh", "0.2.0"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap();
    assert!(
        manifest.contains("[workspace.package]\nversion = \"0.2.0\""),
        "{manifest}"
    );
    assert!(
        manifest.contains("foo = { version = \"9.9.9\" }"),
        "other versions must be untouched"
    );
    let tag = run(
        &dir,
        "git",
        &["describe", "--exact-match", "--tags", "HEAD"],
    );
    assert_eq!(String::from_utf8_lossy(&tag.stdout).trim(), "v0.2.0");
    // The same release cannot be cut twice.
    let again = run(&dir, "bash", &["scripts/release.sh", "0.2.0"]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("`v0.2.0` already exists"));
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn release_rejects_a_non_semantic_version_and_a_dirty_tree() {
    let dir = scratch_repo("reject");
    let bad = run(&dir, "bash", &["scripts/release.sh", "1.2"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("`1.2` is not semantic"));
    std::fs::write(dir.join("Cargo.toml"), "changed").unwrap();
    let dirty = run(&dir, "bash", &["scripts/release.sh", "1.2.3"]);
    assert!(!dirty.status.success());
    assert!(String::from_utf8_lossy(&dirty.stderr).contains("uncommitted changes"));
    std::fs::remove_dir_all(dir).unwrap();
}
