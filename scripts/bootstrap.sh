#!/usr/bin/env bash
# Create or refresh .venv with hydralearn installed editable, plus the extras named as
# arguments: `bootstrap.sh` for training (no torch), `bootstrap.sh test` for the test suite.
# Idempotent and quick when nothing changed: a stamp holds the hash of pyproject.toml and
# the extras installed with it.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
stamp=.venv/.hydralearn-stamp
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
have=$(cat "$stamp" 2>/dev/null || true)
extras=("$@")
missing=0
[ -x .venv/bin/python ] && [ "${have%% *}" = "$want" ] || missing=1
for extra in "${extras[@]}"; do
  case " ${have#* } " in *" $extra "*) ;; *) missing=1 ;; esac
done
[ "$missing" = 0 ] && exit 0

installed=""
[ "${have%% *}" = "$want" ] && installed="${have#* }"  # extras already there for this pyproject
all=$(printf '%s\n' $installed "${extras[@]}" | sort -u | tr '\n' ' ' | sed 's/ *$//')
spec="."
[ -n "$all" ] && spec=".[$(echo "$all" | tr ' ' ',')]"
echo "setting up .venv with ${spec} (first run only, about a minute)..." >&2
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
log=.venv/install.log
if ! { .venv/bin/python -m pip install -q --upgrade pip && .venv/bin/python -m pip install -q -e "$spec"; } >"$log" 2>&1; then
  grep -v '^WARNING: Location' "$log" >&2
  echo "bootstrap: pip install failed (full log: $log)" >&2
  exit 1
fi
.venv/bin/python -c "import hydralearn, jax, flax, optax, hydra" # fail loudly if the install is broken
echo "$want $all" > "$stamp"
echo ".venv ready" >&2
