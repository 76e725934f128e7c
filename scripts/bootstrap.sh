#!/usr/bin/env bash
# Create or refresh .venv with hydralearn installed editable (plus the test extra).
# Idempotent and quick when nothing changed: a stamp holds the hash of pyproject.toml.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
stamp=.venv/.hydralearn-stamp
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ -x .venv/bin/python ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
  exit 0
fi
echo "setting up .venv (first run only, about a minute)..." >&2
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip 2>&1 | grep -v '^WARNING: Location' >&2 || true
.venv/bin/python -m pip install -q -e ".[test]" 2>&1 | grep -v '^WARNING: Location' >&2 || true
.venv/bin/python -c "import hydralearn, jax, flax, optax, hydra" # fail loudly if the install failed
echo "$want" > "$stamp"
