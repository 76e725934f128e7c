#!/usr/bin/env bash
# The test suite (what CI runs): set up the environment with the test extra if needed, then pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh test
exec .venv/bin/python -m pytest "$@"
