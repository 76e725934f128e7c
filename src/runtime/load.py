"""A trained model to generate from or evaluate: a run directory's checkpoint (`load_run`), or
parameters imported from elsewhere (`placed`; cli/target.py reads Hugging Face directories).

Only the parameters are read (not the optimizer state), through the one checkpoint reader
(runtime/restore.py), read-only: a checkpoint that does not verify is reported, never renamed
or deleted. The model runs on the run's own
mesh when this host has its device count, otherwise on one device, with the run's attention
kernel where it runs here, otherwise XLA's.
"""

import dataclasses
import functools
import math
import re
from pathlib import Path

import jax
from flax import nnx
from jax.sharding import Mesh
from omegaconf import OmegaConf

from hydralearn.config import compose as compose_config
from hydralearn.compose.build import abstract_params, param_shardings
from hydralearn.compose.hardware import Host
from hydralearn.compose.kernels import AttentionShape, requirements
from hydralearn.compose.mesh import make_mesh
from hydralearn.config.schema import Kernel, MeshConfig, MeshMode, TrainConfig
from hydralearn.errors import ConfigError
from hydralearn.runtime import restore
from hydralearn.runtime.text import Codec, hf_codec, run_codec

_DATA_OVERRIDE = re.compile(r"^(\+\+|\+)?data([./][^=]*)?=")


@dataclasses.dataclass(frozen=True)
class LoadedModel:
    config: TrainConfig  # mesh axes: those of `mesh`
    params: nnx.State  # placed on `mesh` by the config's sharding rules
    mesh: Mesh
    step: int | None  # the checkpoint's step; None for a Hugging Face directory
    results_dir: Path  # where eval.json is written: the checkpoint's own directory
    hf_dir: Path | None = None  # a Hugging Face directory's tokenizer; None: the run's own

    @functools.cached_property
    def codec(self) -> Codec:
        """Text <-> token ids; read when first needed (evaluating token data needs none)."""
        if self.hf_dir is None:
            return run_codec(self.config.data.tokenizer)
        return hf_codec(self.hf_dir, vocab_size=self.config.model.vocab_size)


def load_run(run_dir: Path, step: int | None = None) -> LoadedModel:
    """The parameters of checkpoint `step` (default: the newest) and the config it was written
    with (runtime/restore.py); ConfigError (one line) if there is none or it does not verify."""
    checkpoint = restore.find(run_dir, step)
    config = _for_this_host(checkpoint.config)
    mesh = make_mesh(config.mesh.axes, jax.devices()[:math.prod(config.mesh.axes.values())])
    return LoadedModel(config=config, params=restore.params(checkpoint, config, mesh), mesh=mesh,
                       step=checkpoint.step, results_dir=checkpoint.path)


def placed(config: TrainConfig, params: nnx.State, *, results_dir: Path,
           hf_dir: Path | None = None) -> LoadedModel:
    """Parameters from elsewhere (e.g. a Hugging Face import) on this host's mesh."""
    config = _for_this_host(config)
    mesh = make_mesh(config.mesh.axes, jax.devices()[:math.prod(config.mesh.axes.values())])
    _, abstract = abstract_params(config)
    params = jax.device_put(params, param_shardings(abstract, config, mesh))
    return LoadedModel(config=config, params=params, mesh=mesh, step=None, results_dir=results_dir,
                       hf_dir=hf_dir)


def _for_this_host(config: TrainConfig) -> TrainConfig:
    """The saved mesh if this host has its device count, else every axis 1 (one device); the
    saved attention kernel if it runs here, else xla (e.g. a GPU run read on a laptop)."""
    if math.prod(config.mesh.axes.values()) != jax.device_count():
        config = dataclasses.replace(config, mesh=MeshConfig(
            mode=MeshMode.fixed, axes={a: 1 for a in config.mesh.axes}))
    shape = AttentionShape(compute_dtype=config.model.compute_dtype, seq_len=config.data.seq_len,
                           head_dim=config.model.resolved_head_dim)
    if requirements(config.kernel.name, host=Host.current(), shape=shape) is not None:
        config = dataclasses.replace(config, kernel=dataclasses.replace(config.kernel, name=Kernel.xla))
    return config


def with_data(model: LoadedModel, overrides: list[str]) -> LoadedModel:
    """The model with its data config changed: `data=<option>` starts from that option (the
    group's YAML, through Hydra), `data.<key>=<value>` changes one key; validated as in training."""
    if not overrides:
        return model
    others = [o for o in overrides if not _DATA_OVERRIDE.match(o)]
    if others:
        raise ConfigError([f"{o}: only the data group can be overridden here (data=<option>, "
                           "data.<key>=<value>)" for o in others])
    container = compose_config.to_container(model.config)
    if any(o.startswith("data=") for o in overrides):
        data = compose_config.compose(overrides).data
    else:
        keys = [o.lstrip("+").removeprefix("data.") for o in overrides]
        data = OmegaConf.merge(container["data"], OmegaConf.from_dotlist(keys))
    container["data"] = OmegaConf.to_container(data, resolve=True)
    return dataclasses.replace(model, config=compose_config.from_container(container))
