#!/usr/bin/env python3
"""Load benchmark of the served components on real Spin (a benchmark, not a test: it asserts
nothing about speed; it records figures).

    python3 benchmarks/load.py                  # spin up (SQLite store), spin up (Redis store), wasm-host
    python3 benchmarks/load.py --peer           # and the original system (Flask + Keras) as a peer
    python3 benchmarks/load.py --targets spin-sqlite --seconds 4

For every target, `POST /predict` (model-service) and `POST /api/predict` (app → model-service;
not on the peer, which has no app) at 1, 4 and 16 concurrent clients with oha (from crates.io),
one step after another: requests/s, p50/p90/p99, errors, and the resident memory of the server's
process tree after each step. Targets run one after another in one invocation, so their ratios are
comparable even on a noisy machine. Where the target has both components, the price of one
chained request is measured too, at one client: `GET /health` (the app alone), `GET /model` (the
model-service alone, no inference) and `GET /api/version` (the app asking the model-service for
`/model`: one chained request with next to no work on either side). Results: benchmarks/load.json and benchmarks/load.md.

Targets:
- `spin-sqlite`: `spin up` (the README's run command; `$SPIN_BIN`, default ../shared/tools/spin)
  with Spin's default key-value store (SQLite, in a fresh state directory).
- `spin-redis`: `spin up --runtime-config-file` with the `default` store in Debian's `redis-server`
  on a loopback port (the cluster's configuration).
- `host`: the project's wasmtime host (`target/release/wasm-host serve`, in-memory store).
- `peer` (with --peer): the original system's model-service, `benchmarks/peer/serve.py` (Flask +
  Keras `model.predict`, same char-CNN, random weights), in a virtualenv under
  ~/.cache/phishing-spin/peer-venv that this command creates (pip: tensorflow-cpu, flask).

Needs: oha (`cargo install oha --version 1.16.0 --locked`) and the built components (`spin build`).
"""

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BODY = json.dumps({"url": "http://paypal.com.verify-account.tk/webscr.php?cmd=_login-run"})
CLIENTS = [1, 4, 16]
# The chaining floor: the app alone, the model-service alone, and the app calling the
# model-service with next to no work on either side (`/api/version` asks for `/model`).
CHAIN = [("GET /health", "/health"), ("GET /model", "/model"), ("GET /api/version", "/api/version")]
PEER_VENV = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "phishing-spin/peer-venv"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def oha(url: str, seconds: int, clients: int, method: str = "POST") -> dict:
    body = ["-H", "content-type: application/json", "-d", BODY] if method == "POST" else []
    cmd = ["oha", "--no-tui", "--output-format", "json", "-z", f"{seconds}s", "-c", str(clients),
           "-m", method, *body, url]
    return json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout)


def summary(r: dict) -> dict:
    pct = r["latencyPercentiles"]
    codes = r.get("statusCodeDistribution", {})
    ok = sum(v for k, v in codes.items() if k.startswith("2"))
    # Requests still in flight when the -z deadline stops oha are not failures of the server.
    errors = sum(v for k, v in codes.items() if not k.startswith("2")) + sum(
        v for k, v in r.get("errorDistribution", {}).items() if "deadline" not in k)
    aborted = sum(v for k, v in r.get("errorDistribution", {}).items() if "deadline" in k)
    ms = lambda v: round(v * 1000, 2) if v is not None else None  # noqa: E731
    return {"requests_per_second": round(r["summary"]["requestsPerSec"], 1), "p50_ms": ms(pct["p50"]),
            "p90_ms": ms(pct["p90"]), "p99_ms": ms(pct["p99"]), "ok": ok, "errors": errors,
            "aborted_in_flight": aborted}


def predictions_counted(base: str) -> int:
    """The app's `phishing_app_predictions_total`, all labels and versions."""
    with urllib.request.urlopen(f"{base}/metrics", timeout=30) as r:
        text = r.read().decode()
    return sum(int(float(line.rsplit(" ", 1)[1])) for line in text.splitlines()
               if line.startswith("phishing_app_predictions_total{"))


def tree_rss_kib(pid: int) -> int:
    """Resident memory of `pid` and all its descendants (`spin up` runs its trigger as a child)."""
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
            for task in Path(f"/proc/{p}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            pass
    return total


def wait_http(url: str, seconds: float) -> None:
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except Exception:  # noqa: BLE001
            time.sleep(0.3)
    sys.exit(f"{url} did not answer within {seconds:.0f} s")


class Target:
    """A server to measure: started by `start`, stopped by `stop`."""

    def __init__(self, name: str, what: str, routes: list[str]):
        self.name, self.what, self.routes = name, what, routes
        self.procs: list[subprocess.Popen] = []
        self.tmp = tempfile.TemporaryDirectory(prefix=f"load-{name}-")
        self.base = ""

    def spawn(self, cmd: list[str], env: dict | None = None) -> subprocess.Popen:
        p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             env={**os.environ, **(env or {})})
        self.procs.append(p)
        return p

    def start(self, args) -> int:
        """Starts the server; returns the pid whose process tree is the server."""
        port = free_port()
        self.base = f"http://127.0.0.1:{port}"
        spin = os.environ.get("SPIN_BIN", str(ROOT.parent / "shared/tools/spin"))
        state = ["--state-dir", f"{self.tmp.name}/state", "--quiet"]
        listen = ["--listen", f"127.0.0.1:{port}"]
        if self.name == "spin-sqlite":
            server = self.spawn([spin, "up", "-f", str(ROOT / "spin.toml"), *listen, *state])
        elif self.name == "spin-redis":
            redis_port = free_port()
            self.spawn(["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "",
                        "--appendonly", "no"])
            config = Path(self.tmp.name) / "runtime-config.toml"
            config.write_text(f'[key_value_store.default]\ntype = "redis"\nurl = "redis://127.0.0.1:{redis_port}"\n')
            time.sleep(0.5)
            server = self.spawn([spin, "up", "-f", str(ROOT / "spin.toml"), *listen, *state,
                                 "--runtime-config-file", str(config)])
        elif self.name == "host":
            server = self.spawn([str(ROOT / "target/release/wasm-host"), "serve", "-f", str(ROOT / "spin.toml"), *listen])
        elif self.name == "peer":
            python = PEER_VENV / "bin/python"
            if not python.exists():
                subprocess.run([sys.executable, "-m", "venv", str(PEER_VENV)], check=True)
                subprocess.run([str(python), "-m", "pip", "install", "--quiet", "tensorflow-cpu", "flask"], check=True)
            server = self.spawn([str(python), str(ROOT / "benchmarks/peer/serve.py"), "--port", str(port)])
        else:
            sys.exit(f"unknown target {self.name}")
        wait_http(f"{self.base}/health", 240)
        # Warm up: compiled code, caches, the first store connection.
        for route in self.routes:
            oha(self.base + route, 1, 1)
        return server.pid

    def stop(self) -> None:
        for p in reversed(self.procs):
            p.terminate()
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
        self.tmp.cleanup()


TARGETS = {
    "spin-sqlite": ("`spin up`, default store (SQLite)", ["/predict", "/api/predict"]),
    "spin-redis": ("`spin up`, Redis store", ["/predict", "/api/predict"]),
    "host": ("wasm-host (in-memory store)", ["/predict", "/api/predict"]),
    "peer": ("original: Flask + Keras", ["/predict"]),
}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--targets", default="spin-sqlite,spin-redis,host")
    ap.add_argument("--peer", action="store_true", help="also measure the original system (installs it first)")
    ap.add_argument("--seconds", type=int, default=8, help="duration of each step")
    args = ap.parse_args()
    if shutil.which("oha") is None:
        sys.exit("oha is not installed: cargo install oha --version 1.16.0 --locked")
    names = args.targets.split(",") + (["peer"] if args.peer else [])
    results = {"date": time.strftime("%Y-%m-%d"), "cpus": os.cpu_count(), "seconds": args.seconds,
               "body": BODY, "targets": {}}
    for name in names:
        what, routes = TARGETS[name]
        t = Target(name, what, routes)
        try:
            pid = t.start(args)
            rss_start = tree_rss_kib(pid)
            steps = []
            counting = None
            for route in routes:
                if route == "/api/predict":
                    counting = {"before": predictions_counted(t.base)}
                for clients in CLIENTS:
                    s = summary(oha(t.base + route, args.seconds, clients))
                    s.update(route=route, clients=clients, rss_kib=tree_rss_kib(pid))
                    steps.append(s)
                    print(f"{name:11} {route:12} c={clients:2}: {s['requests_per_second']:7.1f} req/s  "
                          f"p50 {s['p50_ms']:7.2f} ms  p90 {s['p90_ms']:7.2f}  p99 {s['p99_ms']:7.2f}  "
                          f"errors {s['errors']}  RSS {s['rss_kib'] // 1024} MiB", flush=True)
            if counting is not None:
                # The app counts after each answer has left: wait until the counts stop rising,
                # then compare them with the answers (requests oha abandoned at its deadline
                # may have been served and counted too).
                app_steps = [s for s in steps if s["route"] == "/api/predict"]
                answered = sum(s["ok"] for s in app_steps)
                in_flight = sum(s["aborted_in_flight"] for s in app_steps)
                t0, last = time.time(), -1
                while time.time() - t0 < 120:
                    now = predictions_counted(t.base) - counting["before"]
                    if now == last and now >= answered:
                        break
                    last = now
                    time.sleep(0.5)
                counting.update(answered=answered, in_flight_at_deadlines=in_flight, counted=now,
                                settled_after_s=round(time.time() - t0, 1), rss_after_kib=tree_rss_kib(pid))
                print(f"{name:11} counted {now} predictions for {answered} answered (+{in_flight} in flight "
                      f"at deadlines), settled after {counting['settled_after_s']} s", flush=True)
            chain = {}
            if "/api/predict" in routes:
                for label, route in CHAIN:
                    oha(t.base + route, 1, 1, "GET")
                    chain[label] = summary(oha(t.base + route, args.seconds, 1, "GET"))
                    print(f"{name:11} {label:17} c= 1: {chain[label]['requests_per_second']:7.1f} req/s  "
                          f"p50 {chain[label]['p50_ms']:7.2f} ms", flush=True)
            results["targets"][name] = {"what": what, "rss_start_kib": rss_start, "steps": steps,
                                        "counting": counting, "chain": chain}
        finally:
            t.stop()
    (ROOT / "benchmarks/load.json").write_text(json.dumps(results, indent=2) + "\n")
    write_markdown(results)
    print("wrote benchmarks/load.json and benchmarks/load.md")
    return 0 if all(s["errors"] == 0 for t in results["targets"].values()
                    for s in t["steps"] + list(t["chain"].values())) else 1


def write_markdown(results: dict) -> None:
    targets = results["targets"]
    lines = [
        "# Load",
        "",
        f"`python3 benchmarks/load.py{' --peer' if 'peer' in targets else ''}` on {results['date']} "
        f"({results['cpus']} CPUs; oha and the server on the same machine, so the load generator takes "
        f"CPU from the server). Each step: {results['seconds']} s of `POST` with the body `{results['body']}`; "
        "every target measured in the same run, one after another.",
        "",
        "requests/s and p50 / p90 / p99 in ms; errors are non-2xx answers and failed connections.",
        "",
        "| route | clients | " + " | ".join(targets[n]["what"] for n in targets) + " |",
        "| --- | --- | " + " | ".join("---" for _ in targets) + " |",
    ]
    for route in ["/predict", "/api/predict"]:
        for clients in CLIENTS:
            cells = []
            for n in targets:
                s = next((s for s in targets[n]["steps"] if s["route"] == route and s["clients"] == clients), None)
                cells.append("–" if s is None else
                             f"{s['requests_per_second']:g}/s, {s['p50_ms']:g} / {s['p90_ms']:g} / {s['p99_ms']:g}"
                             + (f", **{s['errors']} errors**" if s["errors"] else ""))
            lines.append(f"| `{route}` | {clients} | " + " | ".join(cells) + " |")
    chained = {n: t["chain"] for n, t in targets.items() if t.get("chain")}
    if chained:
        lines += ["", "The price of one chained request, one client, p50 in ms: the app alone, the "
                  "model-service alone, and the app asking the model-service for `/model` (next to no "
                  "work on either side); \"added\" is what the chain adds to the direct call.", "",
                  "| target | `GET /health` (app) | `GET /model` (model-service) | `GET /api/version` (app → `/model`) | added |",
                  "| --- | --- | --- | --- | --- |"]
        for n, c in chained.items():
            h, m, v = (c[label]["p50_ms"] for label, _ in CHAIN)
            lines.append(f"| {targets[n]['what']} | {h:g} | {m:g} | {v:g} | {v - m:.2f} ({v / m:.2f}×) |")
    lines += ["", "Resident memory of the server's process tree (MiB): after start / most during the steps.", ""]
    for n, t in targets.items():
        peak = max(s["rss_kib"] for s in t["steps"])
        lines.append(f"- {t['what']}: {t['rss_start_kib'] / 1024:.0f} / {peak / 1024:.0f}")
    lines += ["", "Counting under load (the app records each prediction after its answer has left): "
              "`phishing_app_predictions_total` after the `/api/predict` steps against the answers.", ""]
    for n, t in targets.items():
        c = t.get("counting")
        if c:
            lines.append(f"- {t['what']}: {c['counted']} counted for {c['answered']} answered "
                         f"(+{c['in_flight_at_deadlines']} in flight when oha stopped), settled "
                         f"{c['settled_after_s']} s after the last step")
    lines.append("")
    (ROOT / "benchmarks/load.md").write_text("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
