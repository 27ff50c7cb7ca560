"""`python -m conformance.pods.fetch URL [--header 'Name: value'] [--method M]`: an application.

A plain HTTP/1.1 client, as a workload in a pod would be: it resolves the
URL's host with the system resolver (`/etc/hosts` in a pod of the test bed),
connects to that address directly (no proxy setting, none read from the
environment) and prints one JSON line: `status`, `headers` (name -> list of
values, names lowercased) and `body` (text), or `error`. Exit status 0 when
a reply came, 1 otherwise.
"""

from __future__ import annotations

import argparse
import http.client
import json
import sys
import urllib.parse
from collections.abc import Sequence


def fetch(
    url: str, method: str = "GET", headers: Sequence[str] = (), timeout: float = 10
) -> dict[str, object]:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        return {"error": f"not an http:// URL: {url!r}"}
    conn = http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=timeout)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    sent = dict(h.split(":", 1) for h in headers)
    try:
        conn.request(method, target, headers={k.strip(): v.strip() for k, v in sent.items()})
        response = conn.getresponse()
        got: dict[str, list[str]] = {}
        for name, value in response.getheaders():
            got.setdefault(name.lower(), []).append(value)
        body = response.read().decode("utf-8", errors="replace")
    except OSError as e:
        return {"error": f"{type(e).__name__}: {e}"}
    finally:
        conn.close()
    return {"status": response.status, "headers": got, "body": body}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m conformance.pods.fetch", description=__doc__)
    parser.add_argument("url")
    parser.add_argument("--method", default="GET")
    parser.add_argument("--header", action="append", default=[], metavar="'NAME: VALUE'")
    parser.add_argument("--timeout", type=float, default=10)
    args = parser.parse_args(argv)
    if any(":" not in h for h in args.header):
        parser.error("a --header is 'Name: value'")
    result = fetch(args.url, args.method, args.header, args.timeout)
    print(json.dumps(result), flush=True)
    return 1 if "error" in result else 0


if __name__ == "__main__":
    sys.exit(main())
