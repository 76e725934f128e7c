#!/usr/bin/env bash
# One command for a machine with an accelerator (docs/performance.md): the tests that skip
# themselves without a GPU or TPU, then scripts/bench_device.py (a 1B bf16 Llama step, and
# hydralearn against plain JAX), which appends its rows to the ledger in docs/performance.md.
# Sized to finish within 10 minutes on one H100. On a machine without one it says so, exit 0.
#
#   bash scripts/device_check.sh
#
# NVIDIA GPU: after `bash scripts/bootstrap.sh test`, install JAX's CUDA build into .venv
# yourself (this script never installs it): .venv/bin/pip install 'jax[cuda12]==0.10.2'
# TPU: the test extra already brings jax[tpu] (libtpu); nothing more to install.
# Testing this script on a CPU (tests/test_device_check.py): HYDRALEARN_DEVICE_CHECK_ON_CPU=1 goes
# on as if the CPU were the accelerator (its tests skip; the benchmark's comparison runs a tiny
# model), and HYDRALEARN_DEVICE_CHECK_LEDGER=FILE, a copy of docs/performance.md, gets the row.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh test
py=.venv/bin/python

log=$(mktemp)
trap 'rm -f "$log"' EXIT
# JAX's probing of absent backends is noise unless detection fails.
if ! found=$("$py" scripts/bench_device.py --detect 2>"$log"); then
  cat "$log" >&2
  echo "device_check: JAX could not list this machine's devices (above)" >&2
  exit 1
fi
read -r platform count profile kind <<<"$found"
if [ "$platform" = cpu ] && [ "${HYDRALEARN_DEVICE_CHECK_ON_CPU:-}" != 1 ]; then
  echo "device_check: no accelerator: JAX found only $count $platform device(s) ($kind); nothing" \
       "to check (NVIDIA GPU: .venv/bin/pip install 'jax[cuda12]==0.10.2', see docs/performance.md)"
  exit 0
fi
echo "device_check: $count x $kind ($platform, profile $profile)"
# Only the backend found: tests/conftest.py puts pytest on the CPU unless told, and JAX's "gpu"
# also asks for ROCm, whose absence is an error once named (the GPU profiles are NVIDIA's).
export JAX_PLATFORMS=${platform/#gpu/cuda}

# The accelerator-only tests: each test function under a `pytest.mark.skipif` on the backend
# (ON_GPU / ON_TPU / jax.default_backend()), found anew each time rather than listed here.
mapfile -t tests < <(grep -rlE --include='test_*.py' 'default_backend\(\)' tests | sort | xargs -r awk '
  /^@pytest\.mark\.skipif\(.*(ON_GPU|ON_TPU|default_backend)/ { marked = 1 }
  /^(def|class) / { if (marked && $1 == "def") { name = $2; sub(/\(.*/, "", name); print FILENAME "::" name }
                    marked = 0 }')
if [ "${#tests[@]}" = 0 ]; then
  echo "device_check: found no accelerator-only tests under tests/ (skipif on the backend)" >&2
  exit 1
fi
echo "device_check: ${#tests[@]} accelerator-only tests: ${tests[*]}"
# -m '' also runs slow ones; -rs lists what skipped (the other accelerator's tests).
tests_ok=1
"$py" -m pytest -m '' -rs "${tests[@]}" || tests_ok=0

"$py" scripts/bench_device.py ${HYDRALEARN_DEVICE_CHECK_LEDGER:+--ledger "$HYDRALEARN_DEVICE_CHECK_LEDGER"}
if [ "$tests_ok" = 0 ]; then
  echo "device_check: accelerator tests FAILED (above); the benchmark ran anyway" >&2
  exit 1
fi
