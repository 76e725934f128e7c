#!/usr/bin/env bash
# Create or refresh .venv with hydralearn installed editable, plus the extras named as
# arguments: `bootstrap.sh` for training (no torch), `bootstrap.sh test` for the test suite.
# Every dependency is installed at the version in constraints.txt (what CI tested), so a fresh
# machine gets the same environment. Idempotent and quick when nothing changed: a stamp holds
# the hash of pyproject.toml and constraints.txt and the extras installed with them.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
# constraints.txt was tested on Python 3.11 only (some pins, e.g. torch's CPU wheel, exist for 3.11 only).
if [ ! -x .venv/bin/python ]; then
  version=$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null || echo none)
  if [ "$version" != 3.11 ]; then
    echo "bootstrap: error: Python 3.11 is required (\`$PYTHON\` is $version); install it (e.g. \`pyenv install 3.11\`, \`uv python install 3.11\` or your distribution's python3.11) and run PYTHON=python3.11 bash scripts/bootstrap.sh $*" >&2
    exit 2
  fi
fi
stamp=.venv/.hydralearn-stamp
want=$(cat pyproject.toml constraints.txt | sha256sum | cut -d' ' -f1)
have=$(cat "$stamp" 2>/dev/null || true)
extras=("$@")
missing=0
[ -x .venv/bin/python ] && [ "${have%% *}" = "$want" ] || missing=1
for extra in "${extras[@]}"; do
  case " ${have#* } " in *" $extra "*) ;; *) missing=1 ;; esac
done
[ "$missing" = 0 ] && exit 0

installed=""
[ "${have%% *}" = "$want" ] && installed="${have#* }"  # extras already there for these files
all=$(printf '%s\n' $installed "${extras[@]}" | sort -u | tr '\n' ' ' | sed 's/ *$//')
spec="."
[ -n "$all" ] && spec=".[$(echo "$all" | tr ' ' ',')]"
# Measured from scratch (empty pip cache, a busy 2-core machine, packages from a nearby index):
# training only, 0.9 GB in 2.1 minutes; the test extra (torch, transformers, the TPU and CUDA
# compilers, cuDNN), 5.6 GB in 3.5 minutes. A slow network adds to both.
case " $all " in
  *" test "*) size="about 5.6 GB, 3-4 minutes or more on a slow network" ;;
  *) size="about 0.9 GB, about 2 minutes" ;;
esac
echo "bootstrap: setting up .venv with ${spec} at the versions in constraints.txt ($size on a first run; a line per package follows)" >&2
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
log=.venv/install.log
: >"$log"
step() {  # a line per phase and per package downloaded; pip's whole output goes to the log
  echo "bootstrap: $1" >&2
  shift
  # pipefail: the step fails when pip does, whatever grep finds.
  "$@" 2>&1 | tee -a "$log" | { grep --line-buffered -E '^(Collecting|Processing|Downloading|Successfully|ERROR)' >&2 || true; }
}
if ! step "upgrading pip" .venv/bin/python -m pip install --upgrade -c constraints.txt pip \
    || ! step "installing hydralearn and its dependencies" \
         .venv/bin/python -m pip install -c constraints.txt -e "$spec"; then
  echo "bootstrap: pip install failed (full log: $log)" >&2
  exit 1
fi
echo "bootstrap: checking the install" >&2
.venv/bin/python -c "import hydralearn, jax, flax, optax, hydra" # fail loudly if the install is broken
echo "$want $all" > "$stamp"
echo "bootstrap: .venv ready" >&2
