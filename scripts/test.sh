#!/usr/bin/env bash
# The whole test suite on a fresh machine: installs what it needs (Python packages into .venv,
# FerretDB built with Go, redis-server from apt), then lint, types, and pytest on mongomock and
# FerretDB. Extra arguments go to pytest (e.g. -k, -x).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/venv.sh
source scripts/venv.sh

step() { printf '\n== %s\n' "$*"; }

step "python packages"
ensure_venv "test"
step "FerretDB"
bash scripts/ferretdb.sh install
step "redis-server"
bash scripts/redis.sh install

step "ruff"
"$VENV/bin/ruff" check .
"$VENV/bin/ruff" format --check .
step "mypy (strict)"
"$VENV/bin/mypy"

step "pytest: tests/ and compat_suite/ on mongomock and FerretDB"
# pytest exits 5 when it collected no test; set -e turns that, like any failure, into ours.
"$VENV/bin/pytest" --backend mongomock --backend ferretdb "$@"
