#!/usr/bin/env bash
# The main job: set up the environment if needed, then train the default CPU-sized model.
# Extra arguments are Hydra overrides, e.g. `bash scripts/quickstart.sh trainer.steps=50`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
exec .venv/bin/hydralearn-train "$@"
