"""The one reader of a finished checkpoint, for everything but a training run's own resume
(runtime/checkpoint.py's Checkpointer, which also sets corrupt steps aside): generation,
evaluation, export and init.checkpoint all find a step here, learn which config wrote it,
and read its parameters (never the optimizer state) or, for init.checkpoint with the
optimizer, its whole state.

Read-only: a step whose checksums do not verify is reported in one line, never renamed or
deleted; an explicit `@STEP` picks another.
"""

import dataclasses
from pathlib import Path

import jax
import orbax.checkpoint as ocp
from flax import nnx
from jax.sharding import Mesh

from hydralearn.compose.build import abstract_params, make_adapter, param_shardings, plain_config
from hydralearn.compose.mesh import make_mesh
from hydralearn.config.compose import from_container
from hydralearn.config.files import read_mapping
from hydralearn.config.run_dir import RunDir
from hydralearn.config.schema import MeshConfig, MeshMode, TrainConfig
from hydralearn.errors import ConfigError
from hydralearn.runtime import integrity
from hydralearn.runtime.checkpoint import committed_steps


@dataclasses.dataclass(frozen=True)
class Checkpoint:
    run: RunDir
    step: int
    config: TrainConfig  # the config that wrote this step

    @property
    def path(self) -> Path:
        return self.run.checkpoint(self.step)


def find(where: str | Path, step: int | None = None) -> Checkpoint:
    """Checkpoint `step` (default: the newest) of the run at `where` (the run directory or its
    checkpoints directory), with the config that wrote it; ConfigError (one line) if there is
    no run, no such step, or its checksums do not verify."""
    run, step = locate(where, step)
    steps = committed_steps(run.checkpoints)
    problem = integrity.verify(run.checkpoint(step), items=("state", "config"))
    if problem is not None:
        raise ConfigError([f"checkpoint {run.checkpoint(step)} cannot be trusted: {problem} (it was "
                           f"left as it is); available steps: {', '.join(map(str, steps))}"])
    return Checkpoint(run=run, step=step, config=from_container(written_with(run, step)))


def locate(where: str | Path, step: int | None = None) -> tuple[RunDir, int]:
    """(run, step) of checkpoint `step` (default: the newest) at `where`, from a directory
    listing; ConfigError (one line) if there is no run or no such step."""
    run = RunDir.of(where)
    steps = committed_steps(run.checkpoints)
    if not steps:
        raise ConfigError([f"{run.path}: no checkpoints yet (train it first: hydralearn-train ...)"
                           if run.is_run() else f"{run.path}: not a hydralearn run directory (no "
                           f"{run.resolved_config.name}, no {run.checkpoints.name}/)"])
    if step is not None and step not in steps:
        raise ConfigError([f"{run.path}@{step}: no checkpoint at step {step}; available steps: "
                           f"{', '.join(map(str, steps))}"])
    return run, steps[-1] if step is None else step


def written_with(run: RunDir, step: int) -> dict:
    """The config step `step` was written with: its own `config` item, else the run's."""
    item = run.checkpoint(step) / "config"
    if item.is_dir():
        return dict(ocp.handlers.JsonCheckpointHandler().restore(item))
    if not run.is_run():
        raise ConfigError([f"{run.checkpoint(step)}: no config was saved with it and {run.path} has "
                           f"no {run.resolved_config.name}; which config wrote it is unknown"])
    return read_mapping(run.resolved_config)


def params(checkpoint: Checkpoint, config: TrainConfig, mesh: Mesh) -> nnx.State:
    """The parameters alone (the `params` subtree of the saved TrainState), placed by
    `config`'s sharding rules on `mesh`; the optimizer state is not read."""
    _, abstract = abstract_params(config)
    leaves, treedef = jax.tree.flatten(abstract)
    shardings = jax.tree.leaves(param_shardings(abstract, config, mesh),
                                is_leaf=lambda x: isinstance(x, jax.sharding.Sharding))
    target = {"params": treedef.unflatten([jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s)
                                           for x, s in zip(leaves, shardings, strict=True)])}
    path = checkpoint.path / "state"
    try:
        # orbax refuses relative paths; messages keep the user's own spelling of the path
        restored = ocp.PyTreeCheckpointer().restore(path.absolute(), args=ocp.args.PyTreeRestore(
            item=target, restore_args=ocp.checkpoint_utils.construct_restore_args(target),
            partial_restore=True))
    except Exception as e:  # noqa: BLE001 - any failure to read is reported, nothing is touched
        reason = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise ConfigError([f"{path}: cannot read the parameters ({type(e).__name__}: "
                           f"{reason[:200]}); does the checkpoint belong to this config?"]) from None
    return restored["params"]


def full_state(checkpoint: Checkpoint, program):
    """The whole TrainState (parameters and optimizer state) in `program`'s shardings; a tree
    that does not fit is refused naming the leaves (the Checkpointer's own check)."""
    from hydralearn.runtime.checkpoint import Checkpointer, abstract_state

    reader = Checkpointer(checkpoint.run.checkpoints, program.config.checkpoint)
    try:
        target = abstract_state(program.init_state, program.state_shardings)
        return reader.restore(checkpoint.step, target).state
    finally:
        reader.close()


def params_on_one_device(checkpoint: Checkpoint) -> nnx.State:
    """The checkpoint's parameters, the whole model on one device (resharded onto it)."""
    config = dataclasses.replace(checkpoint.config, mesh=MeshConfig(
        mode=MeshMode.fixed, axes={k: 1 for k in checkpoint.config.mesh.axes}))
    return params(checkpoint, config, make_mesh(config.mesh.axes, jax.devices()[:1]))


def merged(params: nnx.State, config: TrainConfig) -> tuple[nnx.State, TrainConfig]:
    """(parameters, config) of the model without adapter, adapters folded into the weights."""
    graphdef, _ = abstract_params(config)
    model = make_adapter(config).merged(nnx.merge(graphdef, params))
    return nnx.state(model, nnx.Param), plain_config(config)
