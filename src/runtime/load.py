"""A trained model to generate from or evaluate: a run directory's checkpoint (`load_run`), or
parameters imported from elsewhere (`placed`; cli/target.py reads Hugging Face directories).

Only the parameters are read (not the optimizer state), read-only: a checkpoint that does not
fit its run's config is reported, never renamed or deleted. The model runs on the run's own
mesh when this host has its device count, otherwise on one device, with the run's attention
kernel where it runs here, otherwise XLA's.
"""

import dataclasses
import functools
import math
import re
from pathlib import Path

import jax
import orbax.checkpoint as ocp
from flax import nnx
from jax.sharding import Mesh
from omegaconf import OmegaConf

from hydralearn.config import compose as compose_config
from hydralearn.compose.build import abstract_params, param_shardings
from hydralearn.config.files import read_mapping
from hydralearn.compose.hardware import Host
from hydralearn.compose.kernels import AttentionShape, requirements
from hydralearn.compose.mesh import make_mesh
from hydralearn.config.schema import Kernel, MeshConfig, MeshMode, TrainConfig
from hydralearn.errors import ConfigError
from hydralearn.runtime import integrity
from hydralearn.runtime.checkpoint import committed_steps
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
    with; ConfigError (one line) if there is no such step or its checksums do not verify."""
    if not (run_dir / "resolved_config.yaml").is_file():
        raise ConfigError([f"{run_dir}: no resolved_config.yaml (not a hydralearn run directory)"])
    steps = committed_steps(run_dir / "checkpoints")
    if not steps:
        raise ConfigError([f"{run_dir}: no checkpoints yet (train it first: hydralearn-train ...)"])
    if step is not None and step not in steps:
        raise ConfigError([f"{run_dir}@{step}: no checkpoint at step {step}; available steps: "
                           f"{', '.join(map(str, steps))}"])
    step = steps[-1] if step is None else step
    checkpoint = run_dir / "checkpoints" / str(step)
    problem = integrity.verify(checkpoint, items=("state", "config"))
    if problem is not None:
        raise ConfigError([f"checkpoint {checkpoint} cannot be trusted: {problem} (it was left as "
                           f"it is); available steps: {', '.join(map(str, steps))}"])
    config = _for_this_host(compose_config.from_container(_written_with(run_dir, checkpoint)))
    mesh = make_mesh(config.mesh.axes, jax.devices()[:math.prod(config.mesh.axes.values())])
    params = _restore_params(checkpoint / "state", config, mesh)
    return LoadedModel(config=config, params=params, mesh=mesh, step=step, results_dir=checkpoint)


def _written_with(run_dir: Path, checkpoint: Path) -> dict:
    """The config a checkpoint was written with: its own `config` item, else the run's."""
    if (checkpoint / "config").is_dir():
        return dict(ocp.handlers.JsonCheckpointHandler().restore(checkpoint / "config"))
    return read_mapping(run_dir / "resolved_config.yaml")


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


def _restore_params(path: Path, config: TrainConfig, mesh: Mesh) -> nnx.State:
    """The `params` subtree of a saved TrainState, in the config's shardings on `mesh`."""
    _, abstract = abstract_params(config)
    leaves, treedef = jax.tree.flatten(abstract)
    shardings = jax.tree.leaves(param_shardings(abstract, config, mesh),
                                is_leaf=lambda x: isinstance(x, jax.sharding.Sharding))
    target = {"params": treedef.unflatten([jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s)
                                           for x, s in zip(leaves, shardings, strict=True)])}
    try:
        # orbax refuses relative paths; messages keep the user's own spelling of the path
        restored = ocp.PyTreeCheckpointer().restore(path.absolute(), args=ocp.args.PyTreeRestore(
            item=target, restore_args=ocp.checkpoint_utils.construct_restore_args(target),
            partial_restore=True))
    except Exception as e:  # noqa: BLE001 - any failure to read is reported, nothing is touched
        reason = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise ConfigError([f"{path}: cannot read the parameters ({type(e).__name__}: "
                           f"{reason[:200]}); does the checkpoint belong to this run's config?"]) from None
    return restored["params"]


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
