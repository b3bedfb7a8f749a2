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

step "documentation site (mkdocs build --strict)"
site="$(mktemp -d)"
NO_MKDOCS_2_WARNING=1 "$VENV/bin/mkdocs" build --strict --quiet --site-dir "$site"
rm -rf "$site"

step "dependency audit (pip-audit)"
# Fails on a reported vulnerability that pyproject.toml does not accept with a reason; says so
# plainly, without failing, when no vulnerability service answers from this machine.
"$VENV/bin/python" scripts/audit_deps.py

step "pytest: tests/ and compat_suite/ on mongomock, with branch coverage"
# pytest exits 5 when it collected no test; set -e turns that, like any failure, into ours.
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
"$VENV/bin/pytest" --backend mongomock --cov=privata_mongo --cov-branch --cov-report= "$@" |
  tee "$log"
mongomock_summary="$(tail -n 1 "$log")"

step "pytest: the backend-parametrised tests on FerretDB"
# Without the tracer: this half waits on the server, and the tracer would double its client
# time for branches the mongomock half already covers. The unit tests ran above.
"$VENV/bin/pytest" --backend ferretdb -k ferretdb "$@" | tee "$log"
ferretdb_summary="$(tail -n 1 "$log")"

step "coverage (branches included)"
echo "privata_mongo: $("$VENV/bin/coverage" report --format=total)%"
# coverage's --fail-under applies to the total measured, so the core's floor is its own report.
# A run narrowed by arguments (-k, a path) measures less than the suite: it reports, no floor.
core_floor=95
if [ "$#" -eq 0 ]; then
  "$VENV/bin/coverage" report --include='privata_mongo/core/*' --skip-covered --sort=cover \
    --fail-under="$core_floor"
else
  "$VENV/bin/coverage" report --include='privata_mongo/core/*' --skip-covered --sort=cover
fi
# The test runner's own closing lines, last, for whoever reads the end of this output.
printf 'mongomock: %s\nferretdb: %s\n' "$mongomock_summary" "$ferretdb_summary"
