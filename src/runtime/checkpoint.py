"""Checkpoints (conf/checkpoint): orbax-checkpoint on tensorstore, async, atomic, resharded.

Layout: <run_dir>/checkpoints/<step>/{state,run}; `state` is the TrainState (step, params,
optimizer state) written by tensorstore (OCDBT), `run` a small JSON (data position, seeds,
skipped-step count). Orbax writes each step into `<step>.orbax-checkpoint-tmp-*` and renames
it when complete, so a process killed mid-write leaves the previous checkpoints intact.
Restore reads into the *current* program's shardings: a checkpoint saved on one mesh loads on
any other. A checkpoint that fails to load is renamed `<step>.corrupt` and the next older
one is tried; every skipped checkpoint is named in a warning.
"""

import dataclasses
import logging
import re
import time
from pathlib import Path
from typing import Any

import jax
import orbax.checkpoint as ocp
from orbax.checkpoint import checkpoint_managers as policies

from hydralearn.compose.schema import BestMode, CheckpointConfig, SaveMode

logger = logging.getLogger(__name__)
# orbax reports every phase of every save at INFO through absl; keep the run's log readable.
logging.getLogger("absl").setLevel(logging.WARNING)

_STEP_DIR = re.compile(r"^\d+$")
_TMP_MARK = ".orbax-checkpoint-tmp"


@dataclasses.dataclass(frozen=True)
class Restored:
    step: int
    state: Any  # TrainState, placed in the target shardings
    meta: dict  # the JSON written with it


def committed_steps(directory: Path) -> list[int]:
    """Steps with a complete checkpoint directory (cheap: a directory listing, no orbax)."""
    if not directory.is_dir():
        return []
    return sorted(int(p.name) for p in directory.iterdir() if _STEP_DIR.match(p.name))


def abstract_state(init_state, shardings) -> Any:
    """Shapes, dtypes and target shardings of the state, with no allocation.

    `shardings` may omit the nnx Variable wrappers the state has: leaves are paired in order.
    """
    leaves, treedef = jax.tree.flatten(jax.eval_shape(init_state))
    targets = jax.tree.leaves(shardings, is_leaf=lambda x: isinstance(x, jax.sharding.Sharding))
    return treedef.unflatten([jax.ShapeDtypeStruct(leaf.shape, leaf.dtype, sharding=target)
                              for leaf, target in zip(leaves, targets, strict=True)])


class Checkpointer:
    def __init__(self, directory: Path, config: CheckpointConfig):
        self.directory = Path(directory).absolute()
        self.config = config
        self.blocking_s = 0.0  # how long the last save() held up the training loop
        for tmp in sorted(self.directory.glob(f"*{_TMP_MARK}*")):
            logger.warning("checkpoint %s is incomplete (the writer was interrupted); skipping and "
                           "removing it", tmp)
        self._manager = ocp.CheckpointManager(self.directory, options=self._options(),
                                              handler_registry=self._handlers())

    def _handlers(self) -> ocp.handlers.DefaultCheckpointHandlerRegistry:
        # Bounds the bytes being serialized at once: host memory, not only device memory.
        gb = self.config.inflight_gb
        state = ocp.handlers.StandardCheckpointHandler(save_concurrent_gb=gb, restore_concurrent_gb=gb)
        registry = ocp.handlers.DefaultCheckpointHandlerRegistry()
        for args in (ocp.args.StandardSave, ocp.args.StandardRestore):
            registry.add("state", args, state)
        run = ocp.handlers.JsonCheckpointHandler()
        for args in (ocp.args.JsonSave, ocp.args.JsonRestore):
            registry.add("run", args, run)
        return registry

    def _options(self) -> ocp.CheckpointManagerOptions:
        c = self.config
        keep: list = [policies.LatestN(n=c.keep_last)]
        if c.keep_every_steps:
            keep.append(policies.EveryNSteps(interval_steps=c.keep_every_steps))
        if c.keep_best:
            keep.append(policies.BestN(
                get_metric_fn=lambda metrics: metrics[c.best_metric], n=c.keep_best,
                reverse=c.best_mode is BestMode.min, keep_checkpoints_without_metrics=False))
        return ocp.CheckpointManagerOptions(
            enable_async_checkpointing=c.mode is SaveMode["async"], cleanup_tmp_directories=True,
            preservation_policy=policies.AnyPreservationPolicy(policies=keep),
            # best_fn only makes orbax store the metrics; `keep` above decides what stays.
            best_fn=(lambda metrics: metrics[c.best_metric]) if c.keep_best else None,
            best_mode=c.best_mode.value)

    def restore_latest(self, target) -> Restored | None:
        """The newest checkpoint that loads, in `target`'s shardings; None if there is none."""
        for step in reversed(self._manager.all_steps()):
            try:
                return self._restore(step, target)
            except Exception as e:  # noqa: BLE001 - any failure to read means: not usable
                reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
                path = self.directory / str(step)
                logger.warning("checkpoint %s cannot be restored (%s: %s); renamed to %s.corrupt, "
                               "trying an older one", path, type(e).__name__, reason[:300], path.name)
                path.rename(path.with_name(f"{path.name}.corrupt"))
                self._manager.reload()
        return None

    def _restore(self, step: int, target) -> Restored:
        started = time.perf_counter()
        out = self._manager.restore(step, args=ocp.args.Composite(
            state=ocp.args.StandardRestore(target), run=ocp.args.JsonRestore()))
        jax.block_until_ready(out.state)
        logger.info("restored checkpoint %s in %.2f s", self.directory / str(step),
                    time.perf_counter() - started)
        return Restored(step=step, state=out.state, meta=dict(out.run))

    def save(self, step: int, state, *, meta: dict, metrics: dict | None = None) -> bool:
        """Start writing `state` as `step`; False if that step is already saved."""
        if step in self._manager.all_steps():
            return False
        started = time.perf_counter()
        self._manager.save(step, args=ocp.args.Composite(
            state=ocp.args.StandardSave(state), run=ocp.args.JsonSave(meta)),
            metrics=metrics, force=True)  # when to save is the trainer's decision
        self.blocking_s = time.perf_counter() - started
        return True

    def latest_step(self) -> int | None:
        return self._manager.latest_step()

    def wait(self) -> None:
        self._manager.wait_until_finished()

    def close(self) -> None:
        self._manager.close()
