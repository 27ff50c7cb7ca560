#!/usr/bin/env bash
# The one command that runs every test: it installs what the tests need into a
# virtual environment (.venv, or $XDSMESH_VENV), then runs ruff, mypy --strict
# and the whole pytest suite in parallel. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${XDSMESH_VENV:-.venv}
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/python" -m pip install -q --disable-pip-version-check -e '.[test]'
"$venv/bin/ruff" check .
"$venv/bin/ruff" format --check .
"$venv/bin/mypy"
"$venv/bin/python" -m pytest -n "${XDSMESH_TEST_WORKERS:-auto}" "$@"
