#!/usr/bin/env python3
"""Legitimate URLs of small sites from Debian's package metadata.

Reads Debian archive indexes (a release's `Packages`: `Homepage:` fields and URLs in short
descriptions; `Translation-en`: URLs in long descriptions; DEP-11 `Components`: AppStream
homepage, bug-tracker, help, donation and translation URLs), plain or compressed (.xz, .gz,
.lz4), and writes `label<TAB>url` rows, all `legitimate`, to stdout.

Each URL was put there by a Debian maintainer as the address of a software project: project
sites, university and personal pages, bug trackers, wikis, forges — the small, old and
non-commercial sites that the shared data lack. Kept apart from the evaluation:
- a URL whose host appears in the shared validation or test split or in any held-out source
  (given as arguments) is dropped, so no held-out site is seen in training;
- at most `--per-host` URLs per host (the forges would otherwise be most of it) and
  `--per-operator` per operator (see `operator`): a hosting service's users (`*.github.io`,
  `*.sourceforge.net`) are another population than independent sites, and phishing uses
  such services too;
- http(s) URLs that parse, with a dotted host; trailing punctuation of prose removed.

Usage: debian_urls.py [--per-host N] [--per-operator N] --exclude FILE... -- INDEX... > out.txt
(`training/data/README.md` lists the indexes and their SHA-256.)
"""
import argparse
import collections
import gzip
import lzma
import re
import subprocess
import sys
from urllib.parse import urlsplit

URL = re.compile(r"https?://[^\s<>\"'()\[\]{}`]+")


def host(url):
    try:
        h = urlsplit(url).hostname
    except ValueError:
        return None
    if not h or "." not in h or h.endswith("."):
        return None
    return h.lower()


def text(path):
    if path.endswith(".xz"):
        data = lzma.open(path).read()
    elif path.endswith(".gz"):
        data = gzip.open(path).read()
    elif path.endswith(".lz4"):
        data = subprocess.run(["lz4cat", path], capture_output=True, check=True).stdout
    else:
        data = open(path, "rb").read()
    return data.decode("utf-8", errors="replace").splitlines()


def operator(h):
    """The domain that runs `h`, roughly: its last two labels, or three under a country's
    second level (`ac.uk`, `co.jp`, `com.au`)."""
    labels = h.split(".")
    if len(labels) >= 3 and len(labels[-1]) == 2 and len(labels[-2]) <= 3:
        return ".".join(labels[-3:])
    return ".".join(labels[-2:])


def urls_in(path):
    for line in text(path):
        for m in URL.finditer(line):
            yield m.group(0).rstrip(".,;:!?*")


def excluded_hosts(paths):
    hosts = set()
    for path in paths:
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                url = line.rstrip("\n").split("\t")[-1].strip()
                if "://" not in url:
                    url = "http://" + url
                h = host(url)
                if h:
                    hosts.add(h)
                    hosts.add(h[4:] if h.startswith("www.") else "www." + h)
    return hosts


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--per-host", type=int, default=3)
    ap.add_argument("--per-operator", type=int, default=50)
    ap.add_argument("--exclude", nargs="*", default=[], help="label<TAB>url files whose hosts are left out")
    ap.add_argument("index", nargs="+", help="Debian index files, in order of preference")
    a = ap.parse_args()
    skip = excluded_hosts(a.exclude)
    seen = set()
    per_host = collections.Counter()
    per_operator = collections.Counter()
    dropped = collections.Counter()
    out = []
    for path in a.index:
        for url in urls_in(path):
            h = host(url)
            if h is None:
                dropped["unparsed"] += 1
                continue
            key = url.lower().rstrip("/")
            if key in seen:
                continue
            seen.add(key)
            if h in skip:
                dropped["host in evaluation data"] += 1
                continue
            if per_host[h] >= a.per_host:
                dropped["over per-host cap"] += 1
                continue
            if per_operator[operator(h)] >= a.per_operator:
                dropped["over per-operator cap"] += 1
                continue
            per_host[h] += 1
            per_operator[operator(h)] += 1
            out.append(url)
    for url in sorted(out):
        print(f"legitimate\t{url}")
    print(f"{len(out)} URLs on {len(per_host)} hosts; dropped {dict(dropped)}", file=sys.stderr)


if __name__ == "__main__":
    main()
