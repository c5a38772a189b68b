#!/usr/bin/env python3
"""The development protocol: how a change to the model is chosen without the held-out sets.

Trains the recipe of a params file (default: the release's, training/params.toml) without two of
its sources, PhishStorm 2016 and JPCERT/CC 2024, then scores them as if they were new:
every fifth row of PhishStorm (both labels, another collector) and all of JPCERT/CC 2024
(phishing only, a later year than the rest of the training mix but one). It prints and writes
(`<out>/dev-protocol.json`):

- PhishStorm's ROC-AUC, and its legitimate URLs called phishing at 0.5, apart for URLs on a
  domain outside the Tranco top 100k ("unknown") and on a known one;
- JPCERT/CC 2024's detection at 0.5 and at the threshold where 10% of PhishStorm's legitimate
  URLs are called phishing (two recipes compared at the same cost in false alarms);
- the same PhishStorm rows passed through three link wrappers of widely used sites (Google's
  `/url?q=`, Facebook's `l.php?u=`, Outlook's safe links; none of them a training wrapper):
  detection and unknown-domain false alarms at 0.5 beside the plain rows', and how many verdicts
  the wrapping changed (a wrapper should change none: the page is the same);
- the `model/checks/` lists: sign-in pages called legitimate, tricks called phishing.

None of the evaluation protocol's held-out sets is read. Usage (from the repository root):

    python3 training/dev_protocol.py [--params training/params.toml] [--out target/dev-protocol]

The binary is `target/release/model-training` (built first with cargo if missing); data is
found as the params file says (paths relative to it).
"""

import argparse
import json
import re
import subprocess
import sys
import urllib.parse
from pathlib import Path

LEFT_OUT = ("phishstorm-2016.txt", "jpcert-2024.txt")
ROOT = Path(__file__).resolve().parent.parent
# A source's `file = "..."` line.
FILE_LINE = re.compile(r'(?m)^file\s*=\s*"([^"]+)"')


def dev_params(text: str) -> str:
    """The params file without the [[data.sources]] blocks of the two left-out sources."""
    blocks = re.split(r"(?m)^(?=\[)", text)
    kept = [
        b
        for b in blocks
        if not (
            b.startswith("[[data.sources]]")
            and any(name in b.split("\n", 2)[1] for name in LEFT_OUT)
        )
    ]
    out = "".join(kept)
    files = FILE_LINE.findall(out)
    still = [f for f in files if f.endswith(LEFT_OUT)]
    if still:
        sys.exit(f"dev_protocol: could not leave out {still}: put `file =` first in its block")
    return out


def source_file(params_text: str, params_path: Path, name: str) -> Path:
    for m in FILE_LINE.finditer(params_text):
        if m.group(1).endswith(name):
            return (params_path.parent / m.group(1)).resolve()
    sys.exit(f"dev_protocol: `{name}` is not a source of {params_path}")


def read_rows(path: Path):
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        label, _, url = line.partition("\t")
        if url and label in ("phishing", "legitimate"):
            rows.append((label == "phishing", url))
    return rows


def score(binary: Path, out: Path, urls):
    res = subprocess.run(
        [str(binary), "--out", str(out), "score"],
        input="\n".join(urls) + "\n",
        capture_output=True,
        text=True,
        check=True,
    )
    scored = []
    for line in res.stdout.splitlines():
        s, _domain, signals, _url = line.split("\t", 3)
        scored.append((float(s), "known_domain_tier" in signals))
    if len(scored) != len(urls):
        sys.exit(f"dev_protocol: {len(urls)} URLs scored as {len(scored)} lines")
    return scored


def with_scheme(url: str) -> str:
    url = url.strip()
    return url if "://" in url else "https://" + url


def wrapped(url: str):
    """`url` inside three link wrappers of widely used sites, as they write it."""
    url = with_scheme(url)
    enc = urllib.parse.quote(url, safe="")
    return [
        f"https://www.google.com/url?q={url}&sa=D&source=editors",
        f"https://l.facebook.com/l.php?u={enc}&h=AT1abc",
        f"https://eur01.safelinks.protection.outlook.com/?url={enc}&data=05%7C01&reserved=0",
    ]


def roc_auc(pos, neg):
    """Mann-Whitney: the chance a phishing URL scores above a legitimate one (ties count half)."""
    allv = sorted([(v, 1) for v in pos] + [(v, 0) for v in neg])
    rank_sum, i = 0.0, 0
    while i < len(allv):
        j = i
        while j < len(allv) and allv[j][0] == allv[i][0]:
            j += 1
        mid = (i + j + 1) / 2  # ranks are 1-based
        rank_sum += mid * sum(1 for k in range(i, j) if allv[k][1] == 1)
        i = j
    return (rank_sum - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg))


def share(xs, pred):
    return sum(1 for x in xs if pred(x)) / max(len(xs), 1)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--params", default=str(ROOT / "training/params.toml"))
    ap.add_argument("--out", default=str(ROOT / "target/dev-protocol"))
    args = ap.parse_args()
    params = Path(args.params).resolve()
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    binary = ROOT / "target/release/model-training"
    if not binary.exists():
        subprocess.run(
            ["cargo", "build", "--release", "--locked", "-p", "model-training"], cwd=ROOT, check=True
        )
    text = params.read_text(encoding="utf-8")
    # Beside the original, so that its relative paths still hold.
    tmp = params.with_name(f".{params.stem}.dev-protocol.toml")
    tmp.write_text(dev_params(text), encoding="utf-8")
    try:
        subprocess.run([str(binary), "--params", str(tmp), "--out", str(out), "all"], check=True)
    finally:
        tmp.unlink()

    ps_rows = read_rows(source_file(text, params, LEFT_OUT[0]))[::5]
    jp_rows = read_rows(source_file(text, params, LEFT_OUT[1]))
    ps = score(binary, out, [u for _, u in ps_rows])
    jp = score(binary, out, [u for _, u in jp_rows])
    pos = [s for (p, _), (s, _) in zip(ps_rows, ps) if p]
    legit = [(s, k) for (p, _), (s, k) in zip(ps_rows, ps) if not p]
    neg = [s for s, _ in legit]
    # The threshold calling 10% of PhishStorm's legitimate URLs phishing.
    at10 = sorted(neg, reverse=True)[max(int(0.10 * len(neg)) - 1, 0)]
    jp_scores = [s for s, _ in jp]
    # Every PhishStorm row again inside each wrapper.
    wraps = [w for _, u in ps_rows for w in wrapped(u)]
    per = len(wrapped("a.example"))
    ws = score(binary, out, wraps)
    w_pos = [s for i, (p, _) in enumerate(ps_rows) if p for s, _ in ws[per * i : per * i + per]]
    w_unknown = [
        s
        for i, ((p, _), (_, k)) in enumerate(zip(ps_rows, ps))
        if not p and not k
        for s, _ in ws[per * i : per * i + per]
    ]
    changed = sum(
        1
        for i, (s, _) in enumerate(ps)
        for w, _ in ws[per * i : per * i + per]
        if (w >= 0.5) != (s >= 0.5)
    )
    checks = {}
    for name, want_phishing in [
        ("login-pages", False),
        ("login-pages-more", False),
        ("tricks", True),
        ("tricks-more", True),
        ("sign-in-flows", False),
        ("redirects", False),
        ("redirect-tricks", True),
    ]:
        path = ROOT / "model/checks" / f"{name}.txt"
        urls = [
            line.strip()
            for line in path.read_text(encoding="utf-8").splitlines()
            if line.strip() and not line.startswith("#")
        ]
        got = score(binary, out, urls)
        right = sum(1 for s, _ in got if (s >= 0.5) == want_phishing)
        checks[name] = [right, len(urls)]
    report = {
        "params": str(params.relative_to(ROOT) if params.is_relative_to(ROOT) else params),
        "left_out": list(LEFT_OUT),
        "phishstorm": {
            "rows": len(ps_rows),
            "phishing": len(pos),
            "roc_auc": roc_auc(pos, neg),
            "legitimate_called_phishing": share(neg, lambda s: s >= 0.5),
            "unknown_domain_legitimate": sum(1 for _, k in legit if not k),
            "unknown_domain_legitimate_called_phishing": share(
                [s for s, k in legit if not k], lambda s: s >= 0.5
            ),
            "known_domain_legitimate_called_phishing": share(
                [s for s, k in legit if k], lambda s: s >= 0.5
            ),
            "detection": share(pos, lambda s: s >= 0.5),
            "threshold_at_10pct_false_alarms": at10,
        },
        "jpcert_2024": {
            "rows": len(jp_rows),
            "detection": share(jp_scores, lambda s: s >= 0.5),
            "detection_at_phishstorm_10pct_false_alarms": share(jp_scores, lambda s: s >= at10),
        },
        "phishstorm_wrapped": {
            "urls": len(wraps),
            "detection": share(w_pos, lambda s: s >= 0.5),
            "unknown_domain_legitimate_called_phishing": share(w_unknown, lambda s: s >= 0.5),
            "verdicts_changed": changed,
        },
        "checks_right": checks,
    }
    (out / "dev-protocol.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    p, j = report["phishstorm"], report["jpcert_2024"]
    print(
        f"PhishStorm ({p['rows']} rows): ROC-AUC {p['roc_auc']:.4f}; legitimate called phishing "
        f"{p['legitimate_called_phishing']:.1%} (unknown domains {p['unknown_domain_legitimate_called_phishing']:.1%} "
        f"of {p['unknown_domain_legitimate']}, known {p['known_domain_legitimate_called_phishing']:.1%})"
    )
    print(
        f"JPCERT/CC 2024 ({j['rows']} rows): detection {j['detection']:.3f}, at PhishStorm's 10% "
        f"false alarms (threshold {p['threshold_at_10pct_false_alarms']:.3f}) {j['detection_at_phishstorm_10pct_false_alarms']:.3f}"
    )
    w = report["phishstorm_wrapped"]
    print(
        f"PhishStorm wrapped ({w['urls']} URLs): detection {w['detection']:.3f} (plain {p['detection']:.3f}), "
        f"unknown-domain legitimate called phishing {w['unknown_domain_legitimate_called_phishing']:.1%} "
        f"(plain {p['unknown_domain_legitimate_called_phishing']:.1%}); verdicts changed {w['verdicts_changed']}"
    )
    print("checks right: " + ", ".join(f"{k} {r}/{n}" for k, (r, n) in checks.items()))
    print(f"-> {out / 'dev-protocol.json'}")


if __name__ == "__main__":
    main()
