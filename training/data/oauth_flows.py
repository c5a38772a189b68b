#!/usr/bin/env python3
"""Writes oauth-flows.txt: legitimate sign-in flow URLs (an identity provider's authorization
endpoint with the query a relying site sends), one `legitimate<TAB>url` a line.

Endpoints: every `AUTHORIZATION_URL` of social-auth-core 4.5.4's backends (PyPI, BSD licence),
fetched with pip. Left out: providers whose site is in `model/checks/` (the sign-in list stays a
check), the identity providers the model card measures this on (Microsoft, Google, Amazon), so
that those measure what the model learned from other providers, and providers whose domain is
not in the Tranco list (`--tranco`): a flow on an unknown domain would teach that an
authorization URL on a fresh domain is fine, which phishing kits imitate; and endpoints on a host
of the evaluation data (`--exclude`), so that no site the protocols score is trained on here. Each endpoint gets
`--per-endpoint` URLs with the parameters of RFC 6749 §4.1.1 and OpenID Connect (client_id in a
provider-like form, redirect_uri on a site of the Tranco list, URL-encoded or not, scope, state,
sometimes nonce, prompt or response_mode), drawn with a fixed seed, so the file is reproducible.

    S=../shared/data
    python3 training/data/oauth_flows.py --tranco $S/phishing-extra/tranco-top100k-domains.txt \
      --exclude $S/phishing/val.txt $S/phishing/test.txt $S/phishing-extra/hannousse-2021.txt \
                $S/phishing-extra/jpcert-2025.txt $S/phishing-extra/phishtank-2020-2021.txt \
                $S/phishing/remla-samples/team10/*.txt $S/phishing/remla-samples/team3/*.txt
"""

import argparse
import glob
import random
import re
import string
import subprocess
import sys
import tempfile
import urllib.parse
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
PACKAGE = "social-auth-core==4.5.4"
# Measured on, so never trained on (registrable domains).
MEASURED = {"microsoftonline.com", "live.com", "microsoft.com", "google.com", "amazon.com"}
TWO_LEVEL = {"co", "com", "gov", "ac", "net", "org", "ne", "or"}


def registrable(host: str) -> str:
    labels = host.lower().split(".")
    if len(labels) >= 3 and labels[-2] in TWO_LEVEL and len(labels[-1]) == 2:
        return ".".join(labels[-3:])
    return ".".join(labels[-2:])


def endpoints(wheel: Path):
    found = set()
    with zipfile.ZipFile(wheel) as z:
        for name in z.namelist():
            if name.startswith("social_core/backends/") and name.endswith(".py"):
                text = z.read(name).decode("utf-8", "replace")
                for m in re.finditer(r'AUTHORIZATION_URL\s*=\s*["\'](https://[^"\'{}%]+)["\']', text):
                    found.add(m.group(1))
    return sorted(found)


def checked_sites():
    sites = set()
    for f in (ROOT / "model/checks").glob("*.txt"):
        for line in f.read_text(encoding="utf-8").splitlines():
            line = line.strip()
            if line and not line.startswith("#") and "://" in line:
                sites.add(registrable(urllib.parse.urlsplit(line).hostname or ""))
    return sites


def client_id(rng):
    kind = rng.randrange(5)
    if kind == 0:
        return str(rng.randrange(10**11, 10**16))
    if kind == 1:
        return "-".join("".join(rng.choices("0123456789abcdef", k=n)) for n in (8, 4, 4, 4, 12))
    if kind == 2:
        return "".join(rng.choices(string.ascii_letters + string.digits, k=rng.choice([20, 24, 32])))
    if kind == 3:
        return "".join(rng.choices("0123456789abcdef", k=rng.choice([16, 20, 32, 40])))
    return f"{rng.randrange(10**11, 10**12)}-{''.join(rng.choices(string.ascii_lowercase + string.digits, k=32))}"


CALLBACKS = ["/auth/callback", "/oauth/callback", "/login/callback", "/complete/{p}/",
             "/accounts/{p}/login/callback/", "/signin-{p}", "/api/auth/callback/{p}", "/callback",
             "/users/auth/{p}/callback", "/oauth2/redirect", "/sso/{p}/return"]
SCOPES = ["openid email profile", "openid profile", "email", "read", "user:email", "basic",
          "openid offline_access", "profile email", "identify email", "public_profile"]


def flow_url(rng, endpoint, sites):
    provider = registrable(urllib.parse.urlsplit(endpoint).hostname).split(".")[0]
    site = rng.choice(sites)
    host = site if rng.random() < 0.4 else rng.choice(["www.", "app.", "accounts.", "auth."]) + site
    redirect = f"https://{host}" + rng.choice(CALLBACKS).format(p=provider)
    params = [("client_id", client_id(rng)),
              ("redirect_uri", redirect),
              ("response_type", "code"),
              ("scope", rng.choice(SCOPES)),
              ("state", "".join(rng.choices(string.ascii_letters + string.digits + "-_", k=rng.choice([16, 24, 32, 43]))))]
    if rng.random() < 0.3:
        params.append(("nonce", "".join(rng.choices(string.ascii_letters + string.digits, k=22))))
    if rng.random() < 0.2:
        params.append(("prompt", rng.choice(["consent", "select_account", "login"])))
    if rng.random() < 0.15:
        params.append(("response_mode", rng.choice(["query", "form_post"])))
    rng.shuffle(params[2:])
    # The redirect_uri is URL-encoded in 70% of the URLs, as most clients send it; the rest keep it raw.
    raw_redirect = rng.random() >= 0.7
    query = "&".join(
        f"{k}={v if raw_redirect and k == 'redirect_uri' else urllib.parse.quote(v, safe='')}"
        for k, v in params
    )
    sep = "&" if "?" in endpoint else "?"
    return endpoint + sep + query


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tranco", required=True, help="tranco-top100k-domains.txt (relying sites)")
    ap.add_argument("--per-endpoint", type=int, default=6)
    ap.add_argument("--out", default=str(HERE / "oauth-flows.txt"))
    ap.add_argument("--wheel", help="a downloaded social-auth-core 4.5.4 wheel (else pip fetches it)")
    ap.add_argument("--exclude", nargs="*", default=[],
                    help="label<TAB>url files whose hosts no endpoint may have (validation, test, held-out sets)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        wheel = args.wheel
        if not wheel:
            subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", tmp, PACKAGE], check=True)
            wheel = glob.glob(f"{tmp}/social_auth_core-*.whl")[0]
        eps = endpoints(Path(wheel))
    skip = MEASURED | checked_sites()
    sites = [d.strip() for d in Path(args.tranco).read_text(encoding="utf-8").splitlines()
             if d.strip() and not d.startswith("#")]
    # Providers on a known domain only: flows on unknown ones would teach that an authorization
    # URL on a fresh domain is fine, which is what phishing kits imitate.
    known = set(sites)
    evaluated = set()
    for f in args.exclude:
        for line in Path(f).read_text(encoding="utf-8", errors="replace").splitlines():
            url = line.split("\t")[-1].strip()
            try:
                host = urllib.parse.urlsplit(url).hostname
            except ValueError:
                continue
            if host:
                evaluated.add(host.lower().removeprefix("www."))
    kept, in_evaluation, unknown = [], [], []
    for e in eps:
        host = urllib.parse.urlsplit(e).hostname
        domain = registrable(host)
        if domain in skip:
            continue
        if host.removeprefix("www.") in evaluated:
            in_evaluation.append(e)
        elif domain not in known:
            unknown.append(e)
        else:
            kept.append(e)
    rng = random.Random(6749)
    rows = [flow_url(rng, e, sites) for e in kept for _ in range(args.per_endpoint)]
    Path(args.out).write_text("".join(f"legitimate\t{u}\n" for u in rows), encoding="utf-8")
    print(f"{len(eps)} endpoints: {len(eps) - len(kept) - len(unknown) - len(in_evaluation)} left out "
          f"(checked or measured sites), {len(in_evaluation)} on a host of the evaluation data, "
          f"{len(unknown)} not on a Tranco domain; {len(rows)} URLs of {len(kept)} -> {args.out}")


if __name__ == "__main__":
    main()
