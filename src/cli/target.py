"""What hydralearn-generate and hydralearn-eval read: `<run dir>[@step]` or a Hugging Face
directory (config.json + *.safetensors, no resolved_config.yaml), imported on the fly.

    load("runs/my_run")          # the newest checkpoint
    load("runs/my_run@500")      # step 500
    load("/ckpt/Llama-3.2-1B")   # a Hugging Face directory
"""

from typing import TYPE_CHECKING

from hydralearn.config.run_dir import RunDir, split_step
from hydralearn.errors import ConfigError

if TYPE_CHECKING:  # runtime.load imports jax: only once a target is found
    from hydralearn.runtime.load import LoadedModel

def load(target: str) -> "LoadedModel":
    """The model `target` names; ConfigError (one line) if it names none."""
    path, step = split_step(target)
    if not path.is_dir():
        raise ConfigError([f"{path}: no such directory (expected a run directory, e.g. runs/<name>, "
                           "or a Hugging Face checkpoint directory)"])
    if (path / "config.json").is_file() and not RunDir(path).is_run():
        if step is not None:
            raise ConfigError([f"{target}: a Hugging Face directory has no steps; drop '@{step}'"])
        from hydralearn.interop import hf
        from hydralearn.runtime.load import placed

        loaded = hf.load(path)
        return placed(loaded.config, loaded.params, results_dir=path, hf_dir=path)
    from hydralearn.runtime.load import load_run

    return load_run(path, step)
