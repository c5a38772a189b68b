#!/usr/bin/env python3
"""What the app's path would cost without service chaining (a benchmark; it asserts only that
both routes give the same score).

    python3 benchmarks/composed/run.py [--seconds 5] [--rounds 3]

Builds the probe component here (its own workspace and target dir), serves it with `spin up`
(`$SPIN_BIN`, default ../shared/tools/spin) beside the model-service, and measures at one client,
alternating: `POST /predict` (the model-service over HTTP, as clients call it) and `POST /probe`
(one instance of the probe with the pre-initialized model-service composed into it by Spin's
component dependencies: the classifier is a function call, no second request). Writes
benchmarks/composed.json. Needs the built model-service (`spin build`) and oha.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
from load import BODY, free_port, oha, summary, wait_http  # noqa: E402


def post(url: str) -> dict:
    req = urllib.request.Request(url, BODY.encode(), {"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    subprocess.run(["cargo", "build", "--release", "--target", "wasm32-wasip2", "--manifest-path",
                    str(HERE / "Cargo.toml")], check=True)
    spin = os.environ.get("SPIN_BIN", str(ROOT.parent / "shared/tools/spin"))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory(prefix="composed-") as state:
        server = subprocess.Popen([spin, "up", "-f", str(HERE / "spin.toml"), "--listen", f"127.0.0.1:{port}",
                                   "--state-dir", state, "--quiet"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_http(f"{base}/v2/health/live", 240)
            served, composed = post(f"{base}/predict")["score"], post(f"{base}/probe")["score"]
            if abs(served - composed) > 1e-6:
                sys.exit(f"/predict scored {served}, /probe {composed}: not the same model")
            runs = {"/predict": [], "/probe": []}
            for route in runs:
                oha(base + route, 1, 1)
            for _ in range(args.rounds):
                for route, out in runs.items():
                    s = summary(oha(base + route, args.seconds, 1))
                    out.append(s)
                    print(f"{route:9} {s['requests_per_second']:7.1f} req/s  p50 {s['p50_ms']:.2f} ms  "
                          f"p90 {s['p90_ms']:.2f}  errors {s['errors']}", flush=True)
        finally:
            server.terminate()
            server.wait(timeout=30)
    p50 = {route: sorted(s["p50_ms"] for s in out)[len(out) // 2] for route, out in runs.items()}
    result = {"date": time.strftime("%Y-%m-%d"), "cpus": os.cpu_count(), "seconds": args.seconds,
              "rounds": args.rounds, "body": BODY, "runs": runs, "median_p50_ms": p50,
              "ratio_probe_vs_predict": round(p50["/probe"] / p50["/predict"], 3)}
    (ROOT / "benchmarks/composed.json").write_text(json.dumps(result, indent=2) + "\n")
    print(f"median p50: /predict {p50['/predict']} ms, /probe {p50['/probe']} ms "
          f"({result['ratio_probe_vs_predict']}x); wrote benchmarks/composed.json")
    return 0 if all(s["errors"] == 0 for out in runs.values() for s in out) else 1


if __name__ == "__main__":
    sys.exit(main())
