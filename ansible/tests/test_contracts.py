"""Contracts between the roles and the upstream software they drive, checked without VMs.

    python -m unittest discover -s ansible/tests -p 'test_*.py'   (ansible/check.sh runs it)

- The spin_shim role waits for k3s to register the `spin` runtime by searching the containerd
  config k3s generates. Its pattern (and the one runtime-class/README.md tells operators to grep
  for) must match the tables k3s writes in both containerd config versions (fixtures/), and not a
  config without the runtime.
- Every download URL the roles build renders to the upstream asset name for each architecture a
  node can have (x86_64 and aarch64 facts).
"""

from __future__ import annotations

import re
import unittest
from pathlib import Path

import jinja2
import jinja2.meta
import yaml

ANSIBLE = Path(__file__).resolve().parent.parent
ROOT = ANSIBLE.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"


def load_yaml(path: Path) -> dict:
    return yaml.safe_load(path.read_text()) or {}


def role_defaults(role: str) -> dict:
    return load_yaml(ANSIBLE / "roles" / role / "defaults" / "main.yml")


class ShimRuntimeRegistered(unittest.TestCase):
    """The role's wait and the README's grep against what k3s writes."""

    def role_pattern(self) -> str:
        return role_defaults("spin_shim")["spin_shim_runtime_regex"]

    def readme_pattern(self) -> str:
        text = (ROOT / "runtime-class" / "README.md").read_text()
        m = re.search(r'^grep -E -A2 "((?:\\.|[^"\\])*)" ', text, re.M)
        self.assertIsNotNone(m, "runtime-class/README.md has no `grep -E -A2 \"...\"` line")
        # Inside double quotes the shell drops the backslash before " and \ only.
        return re.sub(r'\\(["\\$`])', r"\1", m.group(1))

    def test_the_wait_task_uses_the_pattern(self):
        tasks = load_yaml(ANSIBLE / "roles" / "spin_shim" / "tasks" / "main.yml")
        wait = next(t for t in tasks if "ansible.builtin.wait_for" in t)
        self.assertEqual(wait["ansible.builtin.wait_for"]["search_regex"], "{{ spin_shim_runtime_regex }}")

    def test_both_patterns_match_both_config_versions_and_only_the_spin_runtime(self):
        for name, pattern in (("role", self.role_pattern()), ("README", self.readme_pattern())):
            # Ansible's wait_for searches with Python's re, as here.
            for version in ("v2", "v3"):
                config = (FIXTURES / f"k3s-containerd-config-{version}.toml").read_text()
                self.assertRegex(config, pattern, f"the {name}'s pattern misses containerd config {version}")
            without = (FIXTURES / "k3s-containerd-config-v3-without-spin.toml").read_text()
            self.assertNotRegex(without, pattern, f"the {name}'s pattern matches a config without the spin runtime")

    def test_the_old_pattern_would_have_missed_version_3(self):
        # The pattern the role used before: it matched only version 2's double quotes.
        old = r'runtimes\."?spin"?\]'
        self.assertRegex((FIXTURES / "k3s-containerd-config-v2.toml").read_text(), old)
        self.assertNotRegex((FIXTURES / "k3s-containerd-config-v3.toml").read_text(), old)


def render(template: str, variables: dict, facts: dict) -> str:
    """Renders like Ansible's lazy templating for these plain expressions: a variable's value is
    itself a template, rendered (once its own variables are) when used."""
    env = jinja2.Environment(undefined=jinja2.StrictUndefined)
    resolved = {"ansible_facts": facts}

    def resolve(text: str, seen: tuple) -> str:
        if not isinstance(text, str) or "{{" not in text:
            return text
        for name in jinja2.meta.find_undeclared_variables(env.parse(text)):
            if name in resolved:
                continue
            if name in seen:
                raise AssertionError(f"{name} refers to itself")
            if name not in variables:
                raise AssertionError(f"`{name}` is not defined")
            resolved[name] = resolve(variables[name], (*seen, name))
        return env.from_string(text).render(resolved)

    return resolve(template, ())


class DownloadsPerArchitecture(unittest.TestCase):
    # What upstream publishes (release pages of each project), per node architecture.
    EXPECTED = {
        "x86_64": {
            "k3s_binary_url": "https://github.com/k3s-io/k3s/releases/download/v1.33.5%2Bk3s1/k3s",
            "k3s_checksum_url": "https://github.com/k3s-io/k3s/releases/download/v1.33.5%2Bk3s1/sha256sum-amd64.txt",
            "spinkube_helm_url": "https://get.helm.sh/helm-v3.19.0-linux-amd64.tar.gz",
            "spin_shim_url": "containerd-shim-spin-v2-linux-x86_64.tar.gz",
        },
        "aarch64": {
            "k3s_binary_url": "https://github.com/k3s-io/k3s/releases/download/v1.33.5%2Bk3s1/k3s-arm64",
            "k3s_checksum_url": "https://github.com/k3s-io/k3s/releases/download/v1.33.5%2Bk3s1/sha256sum-arm64.txt",
            "spinkube_helm_url": "https://get.helm.sh/helm-v3.19.0-linux-arm64.tar.gz",
            "spin_shim_url": "containerd-shim-spin-v2-linux-aarch64.tar.gz",
        },
    }

    def variables(self) -> dict:
        v = load_yaml(ANSIBLE / "playbooks" / "group_vars" / "all.yml")
        for role in ("spin_shim", "spinkube"):
            v.update(role_defaults(role))
        return v

    def test_every_download_names_the_nodes_architecture(self):
        variables = self.variables()
        for arch, expected in self.EXPECTED.items():
            for name, want in expected.items():
                got = render(variables[name], variables, {"architecture": arch}).strip()
                if want.startswith("https://"):
                    self.assertEqual(got, want, f"{name} on {arch}")
                else:
                    self.assertTrue(got.endswith("/" + want), f"{name} on {arch}: {got}")
            helm_member = render('linux-{{ release_arch }}/helm', variables, {"architecture": arch})
            self.assertIn(helm_member, [f"linux-{'amd64' if arch == 'x86_64' else 'arm64'}/helm"])

    def test_no_task_hard_codes_an_architecture(self):
        for tasks in sorted((ANSIBLE / "roles").glob("*/tasks/*.yml")):
            text = tasks.read_text()
            for word in ("amd64", "arm64", "x86_64", "aarch64"):
                self.assertNotIn(word, text, f"{tasks.relative_to(ROOT)} names `{word}`: use release_arch")


if __name__ == "__main__":
    unittest.main()
