#!/usr/bin/env bash
# The one command that runs every test: it installs what the tests need into a
# virtual environment (.venv, or $XDSMESH_VENV), then runs ruff, mypy --strict
# and the whole pytest suite in parallel. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${XDSMESH_VENV:-.venv}
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
# The pods test bed (tests/pods: network namespaces, iptables capture) needs
# iptables and iproute2, and the data-plane benchmark's smoke test wrk and
# h2load (nghttp2-client); as root (as CI runs), install them if missing.
if [ "$(id -u)" = 0 ] && ! { command -v iptables && command -v ip && command -v wrk \
        && command -v h2load; } >/dev/null 2>&1; then
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iptables iproute2 wrk nghttp2-client
fi
"$venv/bin/python" -m pip install -q --disable-pip-version-check -e '.[test]'
"$venv/bin/ruff" check .
"$venv/bin/ruff" format --check .
"$venv/bin/mypy"
"$venv/bin/python" -m pytest -n "${XDSMESH_TEST_WORKERS:-auto}" "$@"
