#!/usr/bin/env bash
# Run the embedded demo (mongomock, no server): installs what it needs into .venv first.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/venv.sh
source scripts/venv.sh
ensure_venv "mongoengine,mock"
exec "$VENV/bin/python" examples/demo.py
