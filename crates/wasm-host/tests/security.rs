//! Least privilege as `spin.toml` declares it, security headers as the app sends them, and no
//! secrets in the repository.

use std::path::Path;
use std::process::Command;
use wasm_host::manifest::App;

fn manifest() -> App {
    App::load(&test_support::workspace_root().join("spin.toml")).expect("spin.toml")
}

#[test]
fn model_service_has_no_network_no_store_no_files() {
    let app = manifest();
    let ms = &app.components["model-service"];
    assert!(
        ms.allowed_outbound_hosts.is_empty(),
        "{:?}",
        ms.allowed_outbound_hosts
    );
    assert!(ms.key_value_stores.is_empty(), "{:?}", ms.key_value_stores);
    assert!(ms.files.is_empty(), "{:?}", ms.files);
    assert!(ms.variables.is_empty(), "{:?}", ms.variables);
}

#[test]
fn app_reaches_only_the_model_service_and_its_store() {
    let app = manifest();
    let a = &app.components["app"];
    assert_eq!(a.allowed_outbound_hosts, ["{{ model_service_url }}"]);
    assert_eq!(a.variables["model_service_url"], "{{ model_service_url }}");
    assert_eq!(a.key_value_stores, ["default"]);
    assert!(a.files.is_empty(), "{:?}", a.files);
    // The token is a secret with no usable default.
    let token = &app.variables["feedback_export_token"];
    assert!(token.secret);
    assert_eq!(token.default.as_deref(), Some(""));
}

#[test]
fn every_component_is_listed_here() {
    let app = manifest();
    let ids: Vec<&str> = app.components.keys().map(String::as_str).collect();
    assert_eq!(
        ids,
        ["app", "model-service"],
        "a new component needs its privileges checked here"
    );
}

/// A kind of secret and how to recognise it in a line.
type Pattern = (&'static str, fn(&str) -> bool);

/// Patterns of secrets that must never be committed.
const SECRET_PATTERNS: &[Pattern] = &[
    ("private key", |l| {
        l.contains("-----BEGIN") && l.contains("PRIVATE KEY-----")
    }),
    ("AWS access key", |l| {
        l.match_indices("AKIA").any(|(i, _)| {
            l[i + 4..]
                .chars()
                .take(16)
                .filter(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
                .count()
                == 16
        })
    }),
    ("GitHub token", |l| {
        ["ghp_", "gho_", "ghs_", "github_pat_"].iter().any(|p| {
            l.match_indices(p).any(|(i, _)| {
                l[i + p.len()..]
                    .chars()
                    .take_while(char::is_ascii_alphanumeric)
                    .count()
                    >= 30
            })
        })
    }),
    ("Slack token", |l| {
        ["xoxb-", "xoxp-", "xoxa-"].iter().any(|p| l.contains(p))
    }),
    ("password assignment", |l| {
        let lower = l.to_ascii_lowercase();
        [
            "password:",
            "password =",
            "password=",
            "passwd:",
            "admin_password:",
        ]
        .iter()
        .any(|k| {
            lower.find(k).is_some_and(|i| {
                let value = lower[i + k.len()..]
                    .trim()
                    .trim_matches(|c| c == '"' || c == '\'');
                // Empty, a template, or a reference to elsewhere is fine; a literal is not.
                !(value.is_empty()
                    || value.starts_with("{{")
                    || value.starts_with('$')
                    || value.starts_with('<')
                    || value.starts_with("\"\"")
                    || value.starts_with("lookup(")
                    || value.starts_with('>'))
            })
        })
    }),
];

#[test]
fn no_secrets_are_committed() {
    let root = test_support::workspace_root();
    let out = Command::new("git")
        .args(["ls-files", "-z"])
        .current_dir(&root)
        .output();
    let files: Vec<String> = match out {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout)
            .split('\0')
            .filter(|f| !f.is_empty())
            .map(str::to_string)
            .collect(),
        _ => {
            eprintln!("SKIPPED: not a git checkout");
            return;
        }
    };
    let mut found = Vec::new();
    for f in &files {
        // This file names the patterns it looks for.
        if f.ends_with("tests/security.rs") {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(Path::new(&root).join(f)) else {
            continue; // binary
        };
        for (n, line) in text.lines().enumerate() {
            for (what, matches) in SECRET_PATTERNS {
                if matches(line) {
                    found.push(format!(
                        "{f}:{}: {what}: {}",
                        n + 1,
                        line.trim().chars().take(100).collect::<String>()
                    ));
                }
            }
        }
    }
    assert!(
        found.is_empty(),
        "possible secrets committed:\n{}",
        found.join("\n")
    );
    assert!(files.len() > 50, "scanned only {} files", files.len());
}

#[test]
fn secret_patterns_catch_what_they_should() {
    let hit = |l: &str| SECRET_PATTERNS.iter().any(|(_, m)| m(l));
    assert!(hit("-----BEGIN RSA PRIVATE KEY-----"));
    assert!(hit("aws_key = AKIAIOSFODNN7EXAMPLE"));
    assert!(hit("token: ghp_0123456789abcdefghijABCDEFGHIJ012345"));
    assert!(hit("grafana admin_password: prom-operator"));
    assert!(hit("password = \"hunter2\""));
    assert!(!hit("monitoring_grafana_admin_password: \"\""));
    assert!(!hit("admin-password: \"{{ monitoring_password }}\""));
    assert!(!hit("the password comes from a variable"));
}
