//! Embeds the git commit, dirty flag and exact tag of the checkout being built.
//! Outside a git checkout (a crate tarball) every value is empty and the library says "unknown".

use std::path::{Path, PathBuf};
use std::process::Command;

fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn main() {
    let dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    // Overrides for builds from an exported tree (e.g. a container build without `.git`).
    for var in [
        "LIB_VERSION_GIT_COMMIT",
        "LIB_VERSION_GIT_DIRTY",
        "LIB_VERSION_GIT_TAG",
    ] {
        println!("cargo:rerun-if-env-changed={var}");
    }
    let in_git = git(&dir, &["rev-parse", "--is-inside-work-tree"]).as_deref() == Some("true");
    let commit = std::env::var("LIB_VERSION_GIT_COMMIT")
        .ok()
        .or_else(|| in_git.then(|| git(&dir, &["rev-parse", "HEAD"])).flatten())
        .unwrap_or_default();
    let dirty = std::env::var("LIB_VERSION_GIT_DIRTY")
        .ok()
        .unwrap_or_else(|| {
            match in_git
                .then(|| git(&dir, &["status", "--porcelain", "--untracked-files=no"]))
                .flatten()
            {
                Some(s) if !s.is_empty() => "true".into(),
                Some(_) => "false".into(),
                None => String::new(),
            }
        });
    let tag = std::env::var("LIB_VERSION_GIT_TAG")
        .ok()
        .or_else(|| {
            in_git
                .then(|| {
                    git(
                        &dir,
                        &[
                            "describe",
                            "--exact-match",
                            "--tags",
                            "--match",
                            "v*",
                            "HEAD",
                        ],
                    )
                })
                .flatten()
        })
        .unwrap_or_default();
    println!("cargo:rustc-env=LIB_VERSION_GIT_COMMIT={commit}");
    println!("cargo:rustc-env=LIB_VERSION_GIT_DIRTY={dirty}");
    println!("cargo:rustc-env=LIB_VERSION_GIT_TAG={tag}");
    // Rebuild when HEAD moves, a branch is committed to, or the index changes (dirty flag).
    if let Some(git_dir) = in_git
        .then(|| git(&dir, &["rev-parse", "--absolute-git-dir"]))
        .flatten()
    {
        let git_dir = PathBuf::from(git_dir);
        for f in ["HEAD", "index", "packed-refs"] {
            println!("cargo:rerun-if-changed={}", git_dir.join(f).display());
        }
        if let Some(r) = git(&dir, &["symbolic-ref", "-q", "HEAD"]) {
            println!("cargo:rerun-if-changed={}", git_dir.join(r).display());
        }
        println!(
            "cargo:rerun-if-changed={}",
            git_dir.join("refs/tags").display()
        );
    }
}
