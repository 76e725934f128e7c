"""hydralearn: declarative LLM training on JAX, configured with Hydra."""

from pathlib import Path

# conf/ sits beside src/ in the repository (the package is installed editable).
CONF_DIR = Path(__file__).resolve().parent.parent / "conf"
