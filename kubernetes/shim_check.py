#!/usr/bin/env python3
"""Every SpinApp of every overlay, run the way spin-operator runs its pod, under the real SpinKube
runtime: containerd + containerd-shim-spin, the app pulled as an OCI artifact from a registry.

    python3 kubernetes/shim_check.py            # single, canary, autoscaling
    python3 kubernetes/shim_check.py --bench    # and the start/throughput figures under the shim

What a cluster would do, and where this check takes it from:
- spin-operator (spinframework/spin-operator, internal/controller/spinapp_controller.go,
  constructDeployment) runs one container per pod with the SpinApp's `spec.image`, command `/`,
  container port 80 named `http-app`; sets `SPIN_COMPONENTS_TO_RETAIN` to `spec.components`
  joined by `,`; turns `spec.variables` into `SPIN_VARIABLE_<NAME>` environment variables
  (`valueFrom.secretKeyRef` read from the Secret, skipped when optional and absent); renders
  `spec.runtimeConfig` into a TOML runtime config (`[key_value_store.<name>] type = ..., <option>
  = <value>`), stores it in a Secret and mounts it at `/runtime-config.toml`; probes
  `spec.checks.readiness/liveness.httpGet.path` on `http-app`.
- Here: the components built by `spin build` are pushed with the real `spin registry push` to a
  loopback registry (Debian's `docker-registry`), pulled by containerd (≥ 1.7.7; Debian trixie's,
  see ../shared/tools/README.md) and each SpinApp runs as `ctr run --runtime io.containerd.spin.v2
  --net-host` with that environment, the runtime config bind-mounted at `/runtime-config.toml`,
  and `SPIN_HTTP_LISTEN_ADDR` on its own loopback port instead of :80 (host networking).
  A Service named in a variable or a runtime-config URL (`model-service.phishing.svc...`,
  `redis.phishing.svc...:6379`) must be rendered by the overlay; it maps to the loopback port of
  the container of a workload its selector matches (the caller's own `version` first, as Istio's
  per-version routes would), Redis to a loopback `redis-server`. `spec.image` is replaced by the
  pushed build (the cluster pulls the released image of the same build).

Then each container is asked what Kubernetes and Istio would ask: its readiness and liveness
paths answer 200; every route its retained components own answers, routes of components it does
not retain do not; an app reaches the model-service through the URL its manifest configures; an
app reports its own deployment `version` in `/metrics`; its counters land in Redis.

Tools: `$SPIN_SHIM_BIN` (default ../shared/tools/containerd-shim-spin-v2), `$SPIN_BIN` (default
../shared/tools/spin), containerd and ctr in `$CONTAINERD_BIN_DIR` (default
~/.cache/phishing-spin/containerd/usr/bin, where scripts/test.sh unpacks trixie's package),
docker-registry and redis-server on PATH. Missing tools fail under CI and skip elsewhere.
Everything it starts, it stops. Must run as root (containerd).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import check  # noqa: E402  (the static checks: rendering, Service lookup, spin.toml routes)

ROOT = check.ROOT
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "phishing-spin"
OVERLAYS = ["single", "canary", "autoscaling"]
IMAGE = "phishing-detection:shim-check"
PREDICT_BODY = {"url": "http://paypal.com.verify-account.tk/signin"}


@dataclass
class Pod:
    """One SpinApp as its pod would run: what spin-operator would configure."""

    name: str
    components: list[str]
    labels: dict
    env: dict = field(default_factory=dict)
    # variable name -> (Service doc, scheme, path) for URLs that name a cluster Service
    service_vars: dict = field(default_factory=dict)
    # runtime config: store name -> {"type": ..., options...}; Service-named URLs noted separately
    stores: dict = field(default_factory=dict)
    store_services: dict = field(default_factory=dict)
    probes: dict = field(default_factory=dict)
    port: int = 0


def tools() -> dict | None:
    bin_dir = Path(os.environ.get("CONTAINERD_BIN_DIR", CACHE / "containerd/usr/bin"))
    found = {
        "shim": Path(os.environ.get("SPIN_SHIM_BIN", ROOT.parent / "shared/tools/containerd-shim-spin-v2")),
        "spin": Path(os.environ.get("SPIN_BIN", ROOT.parent / "shared/tools/spin")),
        "containerd": bin_dir / "containerd",
        "ctr": bin_dir / "ctr",
        "registry": Path(shutil.which("docker-registry") or "/usr/bin/docker-registry"),
        "redis": Path(shutil.which("redis-server") or "/usr/bin/redis-server"),
    }
    missing = [f"{k} ({v})" for k, v in found.items() if not v.exists()]
    built = [ROOT / "target/wasm32-wasip2/component" / f for f in ("app.wasm", "model_service.prewarmed.wasm")]
    missing += [str(b) for b in built if not b.exists()]
    if missing:
        check.skip_or_fail("shim check needs: " + ", ".join(missing)
                           + " (scripts/test.sh installs them; the components come from `spin build`)")
        return None
    if os.geteuid() != 0:
        check.skip_or_fail("shim check runs containerd and must run as root")
        return None
    return found


# ---------------------------------------------------------------------------------------------
# The plan: what the operator would run, checked against what the overlay renders


def component_ids(spin: dict) -> set[str]:
    return set(spin.get("component", {}))


def routes_of(spin: dict, component: str) -> list[str]:
    return [t["route"] for t in spin.get("trigger", {}).get("http", [])
            if t.get("component") == component and isinstance(t.get("route"), str)]


def workloads(docs) -> list[tuple[str, dict]]:
    """(name, pod labels) of every SpinApp and Deployment."""
    out = [(a["metadata"]["name"], dict(a["spec"].get("podLabels", {}))) for a in check.by_kind(docs, "SpinApp")]
    out += [(d["metadata"]["name"], d["spec"]["template"]["metadata"].get("labels", {}))
            for d in check.by_kind(docs, "Deployment")]
    return out


def service_of_url(docs, value: str, namespace: str):
    """(Service, parsed URL) when `value` is an http(s)/redis URL naming a cluster host, else None."""
    u = urllib.parse.urlsplit(value)
    if u.scheme not in ("http", "https", "redis") or not u.hostname:
        return None
    if u.hostname in ("localhost", "127.0.0.1") or u.hostname.endswith(".spin.internal"):
        return None
    return check.service_for_host(docs, u.hostname, namespace) or False, u


def plan(docs: list[dict], spin: dict, problems: list[str], where: str) -> list[Pod]:
    secrets = {s["metadata"]["name"]: s for s in check.by_kind(docs, "Secret")}
    pods = []
    for app in check.by_kind(docs, "SpinApp"):
        spec, name = app["spec"], app["metadata"]["name"]
        ns = app["metadata"].get("namespace", "phishing")
        pod = Pod(name=name, components=list(spec.get("components") or sorted(component_ids(spin))),
                  labels=dict(spec.get("podLabels", {})))
        unknown = [c for c in pod.components if c not in component_ids(spin)]
        if unknown:
            problems.append(f"{where}: SpinApp/{name} retains {unknown}, which spin.toml does not define "
                            f"(components: {sorted(component_ids(spin))})")
            continue
        if spec.get("components"):
            pod.env["SPIN_COMPONENTS_TO_RETAIN"] = ",".join(spec["components"])
        for var in spec.get("variables", []):
            value = var.get("value")
            ref = (var.get("valueFrom") or {}).get("secretKeyRef")
            if ref:
                secret = secrets.get(ref["name"])
                data = (secret or {}).get("stringData") or {}
                if ref["key"] not in data:
                    if ref.get("optional"):
                        continue
                    problems.append(f"{where}: SpinApp/{name} variable `{var['name']}` needs Secret "
                                    f"{ref['name']}/{ref['key']}, which the overlay does not render")
                    continue
                value = data[ref["key"]]
            if value is None:
                continue
            pod.env[f"SPIN_VARIABLE_{var['name'].upper()}"] = value
            found = service_of_url(docs, value, ns)
            if found is not None:
                svc, url = found
                if svc is False:
                    problems.append(f"{where}: SpinApp/{name} variable `{var['name']}` = {value} names a "
                                    "Service the overlay does not render")
                    continue
                pod.service_vars[var["name"]] = (svc, url)
        for store in (spec.get("runtimeConfig") or {}).get("keyValueStores", []):
            entry = {"type": store["type"]}
            for opt in store.get("options", []):
                entry[opt["name"]] = opt.get("value")
                found = service_of_url(docs, str(opt.get("value")), ns)
                if found is not None:
                    svc, url = found
                    if svc is False:
                        problems.append(f"{where}: SpinApp/{name} store `{store['name']}` option "
                                        f"`{opt['name']}` names a Service the overlay does not render")
                        continue
                    pod.store_services[(store["name"], opt["name"])] = (svc, url)
            pod.stores[store["name"]] = entry
        for kind in ("readiness", "liveness"):
            path = (((spec.get("checks") or {}).get(kind) or {}).get("httpGet") or {}).get("path")
            if path:
                pod.probes[kind] = path
        pods.append(pod)
    return pods


def target_of(docs, svc: dict, caller: Pod, pods: list[Pod]) -> str | None:
    """The workload a Service's traffic from `caller` reaches: its own version first."""
    selector = svc["spec"].get("selector", {})
    matching = [n for n, labels in workloads(docs) if check.matches(selector, labels)]
    if not matching:
        return None
    version = caller.labels.get("version")
    same = [n for n in matching if next((p for p in pods if p.name == n and p.labels.get("version") == version), None)]
    return (same or matching)[0]


# ---------------------------------------------------------------------------------------------
# Running it


def http(port: int, method: str, path: str, body: dict | None = None, timeout: float = 10):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, method=method,
                                 headers={"content-type": "application/json"} if data else {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read().decode(errors="replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")


def redis_keys(port: int, pattern: str) -> list[str]:
    out = subprocess.run(["redis-cli", "-p", str(port), "--raw", "KEYS", pattern], capture_output=True, text=True)
    return [k for k in out.stdout.split() if k]


class Runtime:
    """A loopback registry, containerd with the shim, Redis; stopped by `close`."""

    def __init__(self, t: dict):
        self.t = t
        self.dir = Path(tempfile.mkdtemp(prefix="shim-check-", dir=ROOT / "target"))
        self.procs: list[subprocess.Popen] = []
        self.containers: list[str] = []
        self.registry_port = check.free_port()
        self.redis_port = check.free_port()
        self.sock = self.dir / "containerd.sock"
        self.ref = f"localhost:{self.registry_port}/{IMAGE}"
        # Seconds of the first container's start (the shim precompiles the components then).
        self.first_start: float | None = None

    def start(self) -> None:
        (self.dir / "registry.yml").write_text(
            "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n"
            f"    rootdirectory: {self.dir}/registry\nhttp:\n  addr: 127.0.0.1:{self.registry_port}\n")
        self.spawn([str(self.t["registry"]), "serve", str(self.dir / "registry.yml")])
        (self.dir / "containerd.toml").write_text(
            f'version = 2\nroot = "{self.dir}/root"\nstate = "{self.dir}/state"\n'
            'disabled_plugins = ["io.containerd.grpc.v1.cri"]\n'
            f'[grpc]\n  address = "{self.sock}"\n')
        bin_path = f"{self.t['shim'].parent}:{self.t['containerd'].parent}:{os.environ['PATH']}"
        self.spawn([str(self.t["containerd"]), "--config", str(self.dir / "containerd.toml")],
                   env={"PATH": bin_path}, log="containerd.log")
        self.spawn([str(self.t["redis"]), "--port", str(self.redis_port), "--bind", "127.0.0.1",
                    "--save", "", "--appendonly", "no"])
        check.wait_http(f"http://127.0.0.1:{self.registry_port}/v2/", 30)
        deadline = time.time() + 30
        while not self.sock.exists() and time.time() < deadline:
            time.sleep(0.1)
        t0 = time.time()
        subprocess.run([str(self.t["spin"]), "registry", "push", "--insecure", "-f", str(ROOT / "spin.toml"), self.ref],
                       check=True, capture_output=True, cwd=ROOT)
        self.ctr("image", "pull", "--plain-http", self.ref)
        print(f"shim: pushed with `spin registry push` and pulled by containerd in {time.time() - t0:.1f} s")

    def spawn(self, cmd: list[str], env: dict | None = None, log: str | None = None) -> subprocess.Popen:
        out = open(self.dir / log, "w") if log else subprocess.DEVNULL  # noqa: SIM115
        p = subprocess.Popen(cmd, stdout=out, stderr=out, env={**os.environ, **(env or {})})
        if log:
            out.close()  # the child has its own copy
        self.procs.append(p)
        return p

    def ctr(self, *args: str, check_rc: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run([str(self.t["ctr"]), "--address", str(self.sock), *args],
                              capture_output=True, text=True, check=check_rc)

    def run(self, pod: Pod, env: dict, runtime_config: str | None) -> float:
        """Starts `pod`'s container; returns seconds until its readiness path (or /) answers."""
        cid = f"{pod.name}-{pod.port}"
        args = ["run", "--rm", "--net-host", "--runtime", "io.containerd.spin.v2"]
        for k, v in {**env, "SPIN_HTTP_LISTEN_ADDR": f"127.0.0.1:{pod.port}"}.items():
            args += ["--env", f"{k}={v}"]
        if runtime_config is not None:
            rc = self.dir / f"{cid}-runtime-config.toml"
            rc.write_text(runtime_config)
            args += ["--mount", f"type=bind,src={rc},dst=/runtime-config.toml,options=rbind:ro"]
        args += [self.ref, cid, "/"]
        t0 = time.time()
        self.spawn([str(self.t["ctr"]), "--address", str(self.sock), *args],
                   env={"PATH": f"{self.t['shim'].parent}:{os.environ['PATH']}"}, log=f"{cid}.log")
        self.containers.append(cid)
        probe = pod.probes.get("readiness", "/")
        deadline = time.time() + 120
        while time.time() < deadline:
            try:
                status, _ = http(pod.port, "GET", probe, timeout=2)
                if status < 500:
                    took = time.time() - t0
                    if self.first_start is None:
                        self.first_start = round(took, 2)
                    return took
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"{pod.name} did not answer on port {pod.port} within 120 s "
                           f"(log: {self.dir / (cid + '.log')})")

    def stop_container(self, cid: str) -> None:
        self.ctr("task", "kill", "-s", "SIGKILL", cid, check_rc=False)
        for _ in range(50):
            if self.ctr("task", "ls", check_rc=False).stdout.find(cid) < 0:
                break
            time.sleep(0.1)
        self.ctr("container", "rm", cid, check_rc=False)

    def close(self) -> None:
        for cid in self.containers:
            self.stop_container(cid)
        for p in reversed(self.procs):
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
        subprocess.run(["umount", "-R", str(self.dir / "root")], capture_output=True)
        shutil.rmtree(self.dir, ignore_errors=True)


def runtime_config_toml(pod: Pod, redis_port: int) -> str | None:
    if not pod.stores:
        return None
    lines = []
    for store, entry in pod.stores.items():
        lines.append(f"[key_value_store.{store}]")
        for k, v in entry.items():
            if (store, k) in pod.store_services:
                v = f"redis://127.0.0.1:{redis_port}"
            lines.append(f"{k} = {json.dumps(v)}")
    return "\n".join(lines) + "\n"


def wire(docs, pod: Pod, pods: list[Pod], bad) -> dict:
    """`pod`'s environment with every Service URL pointed at the loopback port of the container
    standing for the workload that Service reaches; `bad` hears of a Service that reaches none."""
    env = dict(pod.env)
    for var, (svc, url) in pod.service_vars.items():
        target = target_of(docs, svc, pod, pods)
        target_pod = next((p for p in pods if p.name == target), None)
        if target_pod is None:
            bad(f"SpinApp/{pod.name} variable `{var}`: Service/{svc['metadata']['name']} selects no SpinApp")
            continue
        env[f"SPIN_VARIABLE_{var.upper()}"] = f"http://127.0.0.1:{target_pod.port}{url.path}"
    return env


def start_pods(rt: Runtime, docs, pods: list[Pod], bad) -> dict:
    """Starts every pod on a port of its own, wired as in the cluster, and leaves them running;
    returns their start times (`bad` hears of a pod that does not start)."""
    for pod in pods:
        pod.port = check.free_port()
    starts = {}
    for pod in pods:
        env = wire(docs, pod, pods, bad)
        try:
            starts[pod.name] = round(rt.run(pod, env, runtime_config_toml(pod, rt.redis_port)), 2)
        except RuntimeError as e:
            bad(str(e))
    return starts


def exercise(rt: Runtime, docs: list[dict], pods: list[Pod], spin: dict, where: str, problems: list[str]) -> dict:
    """Runs every pod of one overlay and asks it what the cluster would. Returns start times."""
    bad = lambda m: problems.append(f"{where}: {m}")  # noqa: E731
    starts = start_pods(rt, docs, pods, bad)
    owned_by = {c: routes_of(spin, c) for c in component_ids(spin)}
    for pod in pods:
        if pod.name not in starts:
            continue
        for kind, path in pod.probes.items():
            status, body = http(pod.port, "GET", path)
            if status != 200:
                bad(f"SpinApp/{pod.name} {kind} probe GET {path} answered {status}: {body[:200]}")
        version = pod.env.get("SPIN_VARIABLE_DEPLOYMENT_VERSION")
        for component in pod.components:
            for route in owned_by[component]:
                path = route
                if route.endswith("/..."):
                    # A wildcard: the probe paths under it, or its root.
                    prefix = route[:-4]
                    under = [p for p in pod.probes.values() if p.startswith(prefix + "/")]
                    path = under[0] if under else (prefix or "/")
                method = "POST" if path in ("/predict", "/api/predict", "/predict/batch") else "GET"
                body = {"urls": [PREDICT_BODY["url"]]} if path == "/predict/batch" else PREDICT_BODY
                status, text = http(pod.port, method, path, body if method == "POST" else None)
                if status != 200:
                    bad(f"SpinApp/{pod.name} ({component}) {method} {path} answered {status}: {text[:200]}")
            if component == "app":
                status, text = http(pod.port, "POST", "/api/predict", PREDICT_BODY)
                if status != 200 or json.loads(text).get("label") != "phishing":
                    bad(f"SpinApp/{pod.name} could not reach the model-service through "
                        f"{pod.env.get('SPIN_VARIABLE_MODEL_SERVICE_URL')}: {status} {text[:200]}")
                _, metrics = http(pod.port, "GET", "/metrics")
                if version and f'phishing_app_build_info{{version="{version}"' not in metrics:
                    bad(f"SpinApp/{pod.name} does not report its deployment version {version} in /metrics")
                if pod.stores:
                    deadline = time.time() + 10
                    while not redis_keys(rt.redis_port, f"metrics:{version}:served:*") and time.time() < deadline:
                        time.sleep(0.05)
                    if not redis_keys(rt.redis_port, f"metrics:{version}:served:*"):
                        bad(f"SpinApp/{pod.name}: no counters of version {version} in Redis")
        # Components it does not retain do not answer for it.
        for component in component_ids(spin) - set(pod.components):
            for route in owned_by[component]:
                if route.endswith("/..."):
                    continue
                status, _ = http(pod.port, "GET", route)
                if status not in (404, 405):
                    bad(f"SpinApp/{pod.name} does not retain {component} but answers GET {route} with {status}")
    for pod in pods:
        if pod.name in starts:
            rt.stop_container(f"{pod.name}-{pod.port}")
    rt.containers = [c for c in rt.containers if not any(c == f"{p.name}-{p.port}" for p in pods)]
    return starts


def check_overlay(rt: Runtime, overlay: str, docs: list[dict] | None = None) -> list[str]:
    docs = docs if docs is not None else check.render(overlay)
    spin = check.spin_manifest()
    problems: list[str] = []
    pods = plan(docs, spin, problems, overlay)
    starts = exercise(rt, docs, pods, spin, overlay, problems)
    if not problems:
        shown = ", ".join(f"{n} {s:.1f} s" for n, s in starts.items())
        print(f"shim: {overlay}: {len(pods)} SpinApps ran under the shim and answered their probes and routes ({shown})")
    return problems


def bench(rt: Runtime) -> dict:
    """Start times and throughput of the single overlay's pods under the shim."""
    docs = check.render("single")
    spin = check.spin_manifest()
    problems: list[str] = []
    pods = [p for p in plan(docs, spin, problems, "single") if p.name in ("model-service-v1", "app-v1")]
    results = {"date": time.strftime("%Y-%m-%d"), "first_start_s": rt.first_start, "starts_s": [], "steps": []}
    ms = next(p for p in pods if p.name == "model-service-v1")
    for _ in range(3):
        ms.port = check.free_port()
        results["starts_s"].append(round(rt.run(ms, ms.env, None), 2))
        rt.stop_container(f"{ms.name}-{ms.port}")
    def fail(message: str) -> None:
        sys.exit(f"shim bench: {message}")

    starts = start_pods(rt, docs, pods, fail)
    app = next(p for p in pods if p.name == "app-v1")
    for port, route in ((ms.port, "/predict"), (app.port, "/api/predict")):
        for clients in (1, 16):
            out = subprocess.run(["oha", "--no-tui", "--output-format", "json", "-z", "8s", "-c", str(clients),
                                  "-m", "POST", "-H", "content-type: application/json", "-d", json.dumps(PREDICT_BODY),
                                  f"http://127.0.0.1:{port}{route}"], capture_output=True, text=True, check=True)
            r = json.loads(out.stdout)
            pct = r["latencyPercentiles"]
            step = {"route": route, "clients": clients, "requests_per_second": round(r["summary"]["requestsPerSec"], 1),
                    **{f"{q}_ms": round(pct[q] * 1000, 2) for q in ("p50", "p90", "p99")}}
            results["steps"].append(step)
            print(f"shim bench: {route} c={clients}: {step['requests_per_second']} req/s, "
                  f"p50 / p90 / p99 {step['p50_ms']} / {step['p90_ms']} / {step['p99_ms']} ms")
    results["pod_starts_s"] = starts
    return results


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bench", action="store_true", help="also measure starts and throughput (benchmarks/shim.json)")
    ap.add_argument("overlays", nargs="*", default=OVERLAYS)
    args = ap.parse_args()
    t = tools()
    if t is None:
        return 0
    rt = Runtime(t)
    problems: list[str] = []
    try:
        rt.start()
        for overlay in args.overlays:
            problems += check_overlay(rt, overlay)
        if args.bench and not problems:
            results = bench(rt)
            (ROOT / "benchmarks/shim.json").write_text(json.dumps(results, indent=2) + "\n")
            print("wrote benchmarks/shim.json")
    finally:
        rt.close()
    for p in problems:
        print(f"PROBLEM: {p}", file=sys.stderr)
    print("shim: all checks passed" if not problems else f"shim: {len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
