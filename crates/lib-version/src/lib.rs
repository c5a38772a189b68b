//! A version-aware library: it knows its own version (from Cargo, never a hard-coded string) and
//! the git commit it was built from, so a running service can say exactly what it is.
//!
//! ```
//! let v = lib_version::version();
//! assert_eq!(v.version, env!("CARGO_PKG_VERSION"));
//! // "0.1.0 (abc1234)", "0.1.0 (abc1234, dirty)" or "0.1.0" outside a git checkout.
//! assert!(v.to_string().starts_with(v.version));
//! ```
#![deny(missing_docs)]

use serde::Serialize;
use std::fmt;

/// What this library is and what it was built from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct VersionInfo {
    /// The library's semantic version, from its Cargo manifest.
    pub version: &'static str,
    /// The full git commit hash of the tree it was built from; `None` outside a git checkout.
    pub git_commit: Option<&'static str>,
    /// Whether tracked files differed from the commit; `None` when unknown.
    pub git_dirty: Option<bool>,
    /// The `v*` tag pointing at the commit, when the build is of a tagged release.
    pub git_tag: Option<&'static str>,
}

fn non_empty(s: &'static str) -> Option<&'static str> {
    (!s.is_empty()).then_some(s)
}

/// The library's version and build information.
pub fn version() -> VersionInfo {
    VersionInfo {
        version: env!("CARGO_PKG_VERSION"),
        git_commit: non_empty(env!("LIB_VERSION_GIT_COMMIT")),
        git_dirty: match env!("LIB_VERSION_GIT_DIRTY") {
            "true" => Some(true),
            "false" => Some(false),
            _ => None,
        },
        git_tag: non_empty(env!("LIB_VERSION_GIT_TAG")),
    }
}

impl VersionInfo {
    /// The first seven characters of the commit, as `git log --oneline` shows it.
    ///
    /// ```
    /// let v = lib_version::VersionInfo { version: "1.2.3", git_commit: Some("abc1234def"), git_dirty: Some(false), git_tag: None };
    /// assert_eq!(v.short_commit(), Some("abc1234"));
    /// ```
    pub fn short_commit(&self) -> Option<&'static str> {
        self.git_commit.map(|c| &c[..c.len().min(7)])
    }

    /// Whether the build's tag (if any) names this version: `vX.Y.Z` for version `X.Y.Z`.
    ///
    /// ```
    /// let mut v = lib_version::VersionInfo { version: "1.2.3", git_commit: None, git_dirty: None, git_tag: Some("v1.2.3") };
    /// assert!(v.tag_matches_version());
    /// v.git_tag = Some("v1.2.4");
    /// assert!(!v.tag_matches_version());
    /// ```
    pub fn tag_matches_version(&self) -> bool {
        self.git_tag
            .is_none_or(|t| t.strip_prefix('v') == Some(self.version))
    }
}

/// `1.2.3 (abc1234)`, `1.2.3 (abc1234, dirty)`, or `1.2.3` when built outside git.
impl fmt::Display for VersionInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.version)?;
        match (self.short_commit(), self.git_dirty) {
            (Some(c), Some(true)) => write!(f, " ({c}, dirty)"),
            (Some(c), _) => write!(f, " ({c})"),
            (None, _) => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(commit: Option<&'static str>, dirty: Option<bool>) -> VersionInfo {
        VersionInfo {
            version: "1.2.3",
            git_commit: commit,
            git_dirty: dirty,
            git_tag: None,
        }
    }

    // The version must be the workspace's, read from the manifest itself (not restated from the
    // same compile-time variable `version()` uses).
    #[test]
    fn version_is_the_workspace_manifests() {
        let manifest = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../Cargo.toml"),
        )
        .unwrap();
        let section = manifest
            .split("[workspace.package]")
            .nth(1)
            .expect("the workspace manifest has [workspace.package]");
        let declared = section
            .lines()
            .find_map(|l| l.trim().strip_prefix("version = "))
            .expect("[workspace.package] declares a version")
            .trim_matches('"');
        assert_eq!(version().version, declared);
        let parts: Vec<&str> = declared.split('.').collect();
        assert!(
            parts.len() == 3 && parts.iter().all(|p| p.parse::<u64>().is_ok()),
            "{declared} is not MAJOR.MINOR.PATCH"
        );
    }

    #[test]
    fn display_shows_short_commit_and_dirty_flag() {
        assert_eq!(
            info(Some("abc1234def567"), Some(false)).to_string(),
            "1.2.3 (abc1234)"
        );
        assert_eq!(
            info(Some("abc1234def567"), Some(true)).to_string(),
            "1.2.3 (abc1234, dirty)"
        );
    }

    #[test]
    fn display_falls_back_to_the_bare_version_outside_git() {
        assert_eq!(info(None, None).to_string(), "1.2.3");
    }

    #[test]
    fn build_info_is_a_real_commit_when_built_in_git() {
        // This workspace is built from a git checkout in development and CI.
        let in_git = std::process::Command::new("git")
            .args(["rev-parse", "HEAD"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .is_ok_and(|o| o.status.success());
        if let (true, Some(c)) = (in_git, version().git_commit) {
            assert_eq!(c.len(), 40);
            assert!(c.chars().all(|c| c.is_ascii_hexdigit()));
        } else {
            assert!(!in_git, "built in git but no commit was embedded");
        }
    }

    // Guards releases: a build from tag vX.Y.Z must carry Cargo version X.Y.Z.
    #[test]
    fn release_tag_agrees_with_cargo_version() {
        let v = version();
        assert!(
            v.tag_matches_version(),
            "built from tag `{}` but the Cargo version is {}; run scripts/release.sh",
            v.git_tag.unwrap_or_default(),
            v.version
        );
    }

    #[test]
    fn serializes_for_apis() {
        let json = serde_json::to_value(info(Some("abc"), Some(false))).unwrap();
        assert_eq!(json["version"], "1.2.3");
        assert_eq!(json["git_commit"], "abc");
    }
}
