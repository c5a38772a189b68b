#!/usr/bin/env python3
"""Load and soak benchmark of the served components (a benchmark, not a test: it asserts nothing
about speed; it records figures).

    python3 benchmarks/load.py                    # against wasm-host serve, started here
    python3 benchmarks/load.py --base-url http://127.0.0.1:3000 --no-host   # against `spin up`

1. Latency percentiles and throughput of `POST /predict` (model-service) and `POST /api/predict`
   (app → model-service) at 1, 4 and 16 concurrent clients (oha, from crates.io).
2. A soak of /api/predict at ~80% of the highest throughput measured in 1, for --soak-seconds
   (default 300): errors counted, the host's resident memory sampled every 10 s.
3. Results to benchmarks/load.json and benchmarks/load.md.

Needs: oha (`cargo install oha --version 1.16.0 --locked`), the built components and wasm-host
(`cargo run --release -p wasm-host -- build`).
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BODY = json.dumps({"url": "http://paypal.com.verify-account.tk/webscr.php?cmd=_login-run"})


def oha(url: str, seconds: int, clients: int, rate: float | None = None) -> dict:
    cmd = ["oha", "--no-tui", "--output-format", "json", "-z", f"{seconds}s", "-c", str(clients),
           "-m", "POST", "-H", "content-type: application/json", "-d", BODY]
    if rate:
        cmd += ["-q", str(rate), "--latency-correction"]
    out = subprocess.run(cmd + [url], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def summary(r: dict) -> dict:
    pct = r["latencyPercentiles"]
    codes = r.get("statusCodeDistribution", {})
    ok = sum(v for k, v in codes.items() if k.startswith("2"))
    # Requests still in flight when the -z deadline stops oha are not failures of the server.
    errors = sum(v for k, v in codes.items() if not k.startswith("2")) + sum(
        v for k, v in r.get("errorDistribution", {}).items() if "deadline" not in k)
    return {
        "requests_per_second": round(r["summary"]["requestsPerSec"], 1),
        "p50_ms": round(pct["p50"] * 1000, 2),
        "p90_ms": round(pct["p90"] * 1000, 2),
        "p99_ms": round(pct["p99"] * 1000, 2),
        "ok": ok,
        "errors": errors,
    }


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def wait_ready(base: str) -> None:
    for _ in range(600):
        try:
            with urllib.request.urlopen(f"{base}/health", timeout=2):
                return
        except Exception:  # noqa: BLE001
            time.sleep(0.5)
    sys.exit(f"{base} did not come up")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base-url", default="http://127.0.0.1:3987")
    ap.add_argument("--no-host", action="store_true", help="do not start wasm-host; use --base-url as is")
    ap.add_argument("--seconds", type=int, default=10, help="duration of each load step")
    ap.add_argument("--soak-seconds", type=int, default=300)
    args = ap.parse_args()
    if shutil.which("oha") is None:
        sys.exit("oha is not installed: cargo install oha --version 1.16.0 --locked")
    base = args.base_url.rstrip("/")
    host = None
    if not args.no_host:
        binary = ROOT / "target/release/wasm-host"
        host = subprocess.Popen([str(binary), "serve", "-f", str(ROOT / "spin.toml"), "--listen", base.removeprefix("http://")],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_ready(base)
        results = {"date": time.strftime("%Y-%m-%d"), "cpus": os.cpu_count(), "steps": [], "soak": None}
        for route in ["/predict", "/api/predict"]:
            for clients in [1, 4, 16]:
                s = summary(oha(base + route, args.seconds, clients))
                s.update(route=route, clients=clients)
                results["steps"].append(s)
                print(f"{route:13} c={clients:2}: {s['requests_per_second']:7.1f} req/s  p50 {s['p50_ms']:6.2f} ms  "
                      f"p90 {s['p90_ms']:6.2f} ms  p99 {s['p99_ms']:6.2f} ms  errors {s['errors']}")
        best = max(s["requests_per_second"] for s in results["steps"] if s["route"] == "/api/predict")
        rate = round(best * 0.8, 1)
        samples = []
        if host is not None:
            stop = threading.Event()

            def sample():
                while not stop.is_set():
                    samples.append((round(time.time() - t0), rss_kib(host.pid)))
                    stop.wait(10)

            t0 = time.time()
            sampler = threading.Thread(target=sample)
            sampler.start()
        print(f"soak: /api/predict at {rate} req/s for {args.soak_seconds} s ...")
        soak = summary(oha(base + "/api/predict", args.soak_seconds, 16, rate))
        if host is not None:
            stop.set()
            sampler.join()
        soak.update(route="/api/predict", target_rps=rate, seconds=args.soak_seconds,
                    rss_kib_samples=samples,
                    rss_first_kib=samples[0][1] if samples else None,
                    rss_last_kib=samples[-1][1] if samples else None)
        results["soak"] = soak
        print(f"soak: {soak['requests_per_second']} req/s, errors {soak['errors']}, p99 {soak['p99_ms']} ms, "
              f"RSS first {soak['rss_first_kib']} KiB, last {soak['rss_last_kib']} KiB")
    finally:
        if host is not None:
            host.terminate()
            host.wait(timeout=30)
    (ROOT / "benchmarks/load.json").write_text(json.dumps(results, indent=2) + "\n")
    lines = [
        "# Load and soak",
        "",
        f"`python3 benchmarks/load.py` on {results['date']} ({results['cpus']} CPUs; oha and wasm-host on the same machine,",
        "so the load generator takes CPU from the server). Each step runs "
        f"{args.seconds} s; fresh instance per request as in Spin.",
        "",
        "| route | clients | req/s | p50 ms | p90 ms | p99 ms | errors |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for s in results["steps"]:
        lines.append(f"| `{s['route']}` | {s['clients']} | {s['requests_per_second']} | {s['p50_ms']} | {s['p90_ms']} | {s['p99_ms']} | {s['errors']} |")
    s = results["soak"]
    lines += [
        "",
        f"Soak: `{s['route']}` at {s['target_rps']} req/s (80% of the best above) for {s['seconds']} s with 16 clients: "
        f"{s['ok']} answered, **{s['errors']} errors**, p50 {s['p50_ms']} ms, p99 {s['p99_ms']} ms. "
        f"Host resident memory (every 10 s): first {s['rss_first_kib']} KiB, last {s['rss_last_kib']} KiB.",
        "",
        "RSS samples (seconds, KiB): " + ", ".join(f"{t}:{k}" for t, k in s["rss_kib_samples"]),
        "",
    ]
    (ROOT / "benchmarks/load.md").write_text("\n".join(lines))
    print("wrote benchmarks/load.json and benchmarks/load.md")
    return 0 if results["soak"]["errors"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
