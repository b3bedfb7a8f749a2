#!/usr/bin/env bash
# Shared by demo.sh and test.sh: a project virtualenv in .venv with the given extras installed.
VENV="${PRIVATA_VENV:-$PWD/.venv}"

ensure_venv() {
  local extras="$1"
  if ! command -v python3 >/dev/null 2>&1; then
    echo "error: python3 (3.10 or newer) is required" >&2
    exit 2
  fi
  if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
  fi
  local stamp="$VENV/.privata-installed-$extras"
  if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -e ".[$extras]"
    touch "$stamp"
  fi
}
