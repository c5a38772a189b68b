//! The parts of `spin.toml` (manifest version 2) this host understands.

use anyhow::{bail, Context, Result};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A Spin application as declared in `spin.toml`.
#[derive(Debug, Clone, Default)]
pub struct App {
    /// `[application] name`
    pub name: String,
    /// The folder holding `spin.toml`; component sources are relative to it.
    pub base: PathBuf,
    /// Application variables (`[variables]`).
    pub variables: BTreeMap<String, Variable>,
    /// HTTP triggers in manifest order.
    pub triggers: Vec<Trigger>,
    /// Components by id.
    pub components: BTreeMap<String, ComponentDef>,
}

/// One application variable.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Variable {
    /// Value when none is provided.
    pub default: Option<String>,
    /// Must be provided.
    #[serde(default)]
    pub required: bool,
    /// Hidden from logs.
    #[serde(default)]
    pub secret: bool,
}

/// An HTTP trigger: a route to a component, or a private (chaining-only) component.
#[derive(Debug, Clone)]
pub struct Trigger {
    /// `None` for `route = { private = true }`.
    pub route: Option<String>,
    /// The component id.
    pub component: String,
}

/// `[component.<id>]`
#[derive(Debug, Clone, Deserialize)]
pub struct ComponentDef {
    /// Path of the `.wasm`, relative to the manifest.
    pub source: PathBuf,
    /// Hosts the component may call, as Spin writes them (`http://host:port`, `*` wildcards).
    #[serde(default)]
    pub allowed_outbound_hosts: Vec<String>,
    /// Key-value stores the component may open.
    #[serde(default)]
    pub key_value_stores: Vec<String>,
    /// Component variables, possibly templates over application variables (`{{ name }}`).
    #[serde(default)]
    pub variables: BTreeMap<String, String>,
    /// Files (ignored by this host).
    #[serde(default)]
    pub files: Vec<toml::Value>,
    /// Build settings (used by `spin build`, not by this host).
    #[serde(default)]
    pub build: Option<toml::Value>,
    /// Description.
    #[serde(default)]
    pub description: Option<String>,
}

#[derive(Deserialize)]
struct RawManifest {
    spin_manifest_version: u32,
    application: RawApp,
    #[serde(default)]
    variables: BTreeMap<String, Variable>,
    #[serde(default)]
    trigger: RawTriggers,
    #[serde(default)]
    component: BTreeMap<String, ComponentDef>,
}

#[derive(Deserialize)]
struct RawApp {
    name: String,
}

#[derive(Deserialize, Default)]
struct RawTriggers {
    #[serde(default)]
    http: Vec<RawHttpTrigger>,
}

#[derive(Deserialize)]
struct RawHttpTrigger {
    route: toml::Value,
    component: String,
}

impl App {
    /// Reads and checks a manifest.
    pub fn load(path: &Path) -> Result<App> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("failed to read Spin manifest `{}`", path.display()))?;
        // `spin.toml` alone has the parent "", which is no directory to run builds in.
        let base = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        App::parse(&text, base)
            .with_context(|| format!("invalid Spin manifest `{}`", path.display()))
    }

    /// Parses manifest text; `base` is the folder sources are relative to.
    pub fn parse(text: &str, base: &Path) -> Result<App> {
        let raw: RawManifest = toml::from_str(text)?;
        if raw.spin_manifest_version != 2 {
            bail!(
                "spin_manifest_version {} is not supported (expected 2)",
                raw.spin_manifest_version
            );
        }
        let mut triggers = Vec::new();
        for t in raw.trigger.http {
            let route = match &t.route {
                toml::Value::String(r) => {
                    if !r.starts_with('/') {
                        bail!("route `{r}` must start with `/`");
                    }
                    Some(r.clone())
                }
                toml::Value::Table(tbl)
                    if tbl.get("private").and_then(|v| v.as_bool()) == Some(true) =>
                {
                    None
                }
                other => bail!("unsupported route `{other}`"),
            };
            if !raw.component.contains_key(&t.component) {
                bail!(
                    "trigger for route {:?} names unknown component `{}`",
                    route,
                    t.component
                );
            }
            triggers.push(Trigger {
                route,
                component: t.component,
            });
        }
        for (id, c) in &raw.component {
            for (name, value) in &c.variables {
                for var in template_refs(value) {
                    if !raw.variables.contains_key(&var) {
                        bail!("variable `{name}` of component `{id}` refers to undeclared application variable `{var}`");
                    }
                }
            }
        }
        Ok(App {
            name: raw.application.name,
            base: base.to_path_buf(),
            variables: raw.variables,
            triggers,
            components: raw.component,
        })
    }

    /// Runs each component's build commands in the manifest's folder (`spin build`).
    pub fn build(&self) -> Result<()> {
        for (id, c) in &self.components {
            let Some(build) = &c.build else { continue };
            let commands: Vec<String> = match build.get("command") {
                Some(toml::Value::String(s)) => vec![s.clone()],
                Some(toml::Value::Array(a)) => a
                    .iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect(),
                _ => bail!("component `{id}` has a [build] table without `command`"),
            };
            for command in commands {
                eprintln!("building component `{id}`: {command}");
                let status = std::process::Command::new("sh")
                    .arg("-c")
                    .arg(&command)
                    .current_dir(&self.base)
                    .status()
                    .with_context(|| format!("failed to run `{command}`"))?;
                if !status.success() {
                    bail!("build command of component `{id}` failed ({status}): {command}");
                }
            }
        }
        Ok(())
    }

    /// The component's `.wasm` path.
    pub fn source_path(&self, component: &str) -> PathBuf {
        self.base.join(&self.components[component].source)
    }
}

/// The application variables a template such as `"{{ model_service_url }}/x"` refers to.
pub fn template_refs(template: &str) -> Vec<String> {
    let mut refs = Vec::new();
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        let Some(end) = rest[start..].find("}}") else {
            break;
        };
        refs.push(rest[start + 2..start + end].trim().to_string());
        rest = &rest[start + end + 2..];
    }
    refs
}

/// Expands `{{ name }}` references with `lookup`.
pub fn expand_template(template: &str, lookup: impl Fn(&str) -> Option<String>) -> Result<String> {
    let mut out = String::new();
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        let end = rest[start..]
            .find("}}")
            .with_context(|| format!("unclosed `{{{{` in `{template}`"))?;
        out.push_str(&rest[..start]);
        let name = rest[start + 2..start + end].trim();
        out.push_str(&lookup(name).with_context(|| format!("variable `{name}` has no value"))?);
        rest = &rest[start + end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MANIFEST: &str = r#"
spin_manifest_version = 2
[application]
name = "demo"
[variables]
backend = { default = "http://b.spin.internal" }
[[trigger.http]]
route = "/api/..."
component = "a"
[[trigger.http]]
route = { private = true }
component = "b"
[component.a]
source = "a.wasm"
allowed_outbound_hosts = ["http://b.spin.internal"]
[component.a.variables]
url = "{{ backend }}/x"
[component.b]
source = "b.wasm"
"#;

    #[test]
    fn parses_routes_private_triggers_and_variables() -> Result<()> {
        let app = App::parse(MANIFEST, Path::new("/app"))?;
        assert_eq!(app.name, "demo");
        assert_eq!(app.triggers[0].route.as_deref(), Some("/api/..."));
        assert_eq!(app.triggers[1].route, None);
        assert_eq!(app.source_path("b"), PathBuf::from("/app/b.wasm"));
        let url = expand_template(&app.components["a"].variables["url"], |n| {
            app.variables.get(n).and_then(|v| v.default.clone())
        })?;
        assert_eq!(url, "http://b.spin.internal/x");
        Ok(())
    }

    #[test]
    fn undeclared_variable_reference_is_an_error() {
        let bad = MANIFEST.replace("{{ backend }}", "{{ nope }}");
        let err = App::parse(&bad, Path::new(".")).unwrap_err();
        assert!(
            err.to_string()
                .contains("undeclared application variable `nope`"),
            "{err}"
        );
    }

    #[test]
    fn trigger_for_unknown_component_is_an_error() {
        let bad = MANIFEST.replace("component = \"b\"", "component = \"c\"");
        assert!(App::parse(&bad, Path::new(".")).is_err());
    }
}
