"""The run directory Hydra will use, known before Hydra creates it.

hydralearn-train checks and locks it first (runtime/rundir.py), so storage problems and a
directory held by another process are reported in one line, and Hydra never writes into a
directory it then has to leave.
"""

from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig

from hydralearn import CONF_DIR


def planned_run_dir(overrides: list[str]) -> Path:
    """`hydra.run.dir` of a single run with these (validated) overrides."""
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("train", overrides=overrides, return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)  # `${hydra:...}` in the directory's pattern
    return Path(cfg.hydra.run.dir)
