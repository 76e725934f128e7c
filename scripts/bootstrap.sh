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
log=.venv/install.log
if ! { .venv/bin/python -m pip install -q --upgrade pip && .venv/bin/python -m pip install -q -e ".[test]"; } >"$log" 2>&1; then
  grep -v '^WARNING: Location' "$log" >&2
  echo "bootstrap: pip install failed (full log: $log)" >&2
  exit 1
fi
.venv/bin/python -c "import hydralearn, jax, flax, optax, hydra" # fail loudly if the install is broken
echo "$want" > "$stamp"
echo ".venv ready" >&2
