"""Checkpoints (conf/checkpoint): orbax-checkpoint on tensorstore, async, atomic, verified, resharded.

Layout: <run_dir>/checkpoints/<step>/{state,run,data,config,checksums.json}; `state` is the
TrainState (step, params, optimizer state) written by tensorstore (OCDBT), `run` a small JSON
(seeds, skipped-step count), `data` the data loader's position (its Grain iterator state, one
`process_<i>-of-<n>.json` per JAX process, written by Grain's orbax handler), `config` the
resolved config the step was written with, `checksums.json` the CRC-32 of every item file (runtime/integrity.py). Orbax writes each
step into `<step>.orbax-checkpoint-tmp*`; the checksums are written there once every item is
final, and the rename to `<step>` commits both, so a process killed mid-write leaves the
previous checkpoints intact and a committed step always carries its checksums.

Restore takes the newest step whose checksums verify; a step that fails them is renamed
`<step>.corrupt-<n>` (never an existing name), named in a one-line warning, and the previous
step is tried. A step that verifies but does not fit the current program (tree structure,
shapes, dtypes) is a config mismatch: ConfigError, and the step is left as it is. If steps
exist (or were set aside) but none verifies, the run is refused rather than restarted.
Restore reads into the *current* program's shardings: a checkpoint saved on one mesh loads on
any other.
"""

import dataclasses
import json
import logging
import re
import shutil
import time
from pathlib import Path
from typing import Any

import grain.checkpoint
import jax
import numpy as np
import orbax.checkpoint as ocp
from orbax.checkpoint import checkpoint_managers as policies

from hydralearn.config.schema import BestMode, CheckpointConfig, SaveMode
from hydralearn.errors import ConfigError
from hydralearn.runtime import integrity, library_noise, storage
from hydralearn.runtime.errors import RunRefused

logger = logging.getLogger(__name__)
# orbax reports every phase of every save at INFO through absl; keep the run's log readable.
logging.getLogger("absl").setLevel(logging.WARNING)

_STEP_DIR = re.compile(r"^\d+$")
_TMP_MARK = ".orbax-checkpoint-tmp"
_SET_ASIDE = ".corrupt"
_MAX_LISTED = 8  # mismatching leaves named in a refusal


@dataclasses.dataclass(frozen=True)
class Restored:
    step: int
    state: Any  # TrainState, placed in the target shardings
    meta: dict  # the JSON written with it
    data_state: dict | None = None  # this process's data-loader position, if saved


class _DataPosition:
    """A loader state captured when the save starts, in the shape Grain's orbax handler
    writes and reads (JSON bytes): the loader itself goes on while the write runs."""

    def __init__(self, state: dict | None = None):
        self.state = state

    def get_state(self) -> bytes:
        return json.dumps(self.state).encode()

    def set_state(self, state: bytes) -> None:
        self.state = json.loads(state)

    def start_prefetch(self) -> None:
        pass


def committed_steps(directory: Path) -> list[int]:
    """Steps with a complete checkpoint directory (cheap: a directory listing, no orbax)."""
    if not directory.is_dir():
        return []
    return sorted(int(p.name) for p in directory.iterdir() if _STEP_DIR.match(p.name))


def set_aside(directory: Path) -> list[str]:
    """Names of the checkpoints set aside as corrupt (`<step>.corrupt-<n>`)."""
    if not directory.is_dir():
        return []
    return sorted(p.name for p in directory.iterdir() if _SET_ASIDE in p.name)


def saved_config(directory: Path) -> dict | None:
    """The resolved config the newest checkpoint with an intact config record was written with;
    None if no checkpoint holds one. Reads only the small `config` item, never the state."""
    for step in reversed(committed_steps(directory)):
        step_dir = directory / str(step)
        if (step_dir / "config").is_dir() and integrity.verify(step_dir, items=("config",)) is None:
            return dict(ocp.handlers.JsonCheckpointHandler().restore(step_dir / "config"))
    return None


def _has_data_position(step_dir: Path) -> bool:
    """Whether the step holds a data position this run can continue; RunRefused if it was
    saved by another number of JAX processes (each process's shard and position are its own)."""
    files = sorted((step_dir / "data").glob("process_*-of-*.json"))
    if not files:
        return False
    saved, count = int(files[0].stem.rsplit("-of-", 1)[1]), jax.process_count()
    if saved != count:
        raise RunRefused(f"checkpoint {step_dir} was written by {saved} JAX processes and this run "
                         f"has {count}: each process resumes its own data shard, so resume with "
                         f"{saved} processes (or set name=<new name> for a new run)")
    return True


def abstract_state(init_state, shardings) -> Any:
    """Shapes, dtypes and target shardings of the state, with no allocation.

    `shardings` may omit the nnx Variable wrappers the state has: leaves are paired in order.
    """
    leaves, treedef = jax.tree.flatten(jax.eval_shape(init_state))
    targets = jax.tree.leaves(shardings, is_leaf=lambda x: isinstance(x, jax.sharding.Sharding))
    return treedef.unflatten([jax.ShapeDtypeStruct(leaf.shape, leaf.dtype, sharding=target)
                              for leaf, target in zip(leaves, targets, strict=True)])


def leaf_specs(tree) -> dict[str, str]:
    """'shape dtype' of every array leaf, keyed by its dotted path ('params.embed.value')."""
    return {jax.tree_util.keystr(path, simple=True, separator="."): f"{tuple(x.shape)} {np.dtype(x.dtype)}"
            for path, x in jax.tree_util.tree_leaves_with_path(tree)}


def mismatches(saved: dict[str, str], current: dict[str, str]) -> list[str]:
    """'path: saved -> current' for every leaf that differs, is missing or is new; parameters
    first (the optimizer state mirrors them)."""
    paths = sorted(saved.keys() | current.keys(), key=lambda p: (not p.startswith("params."), p))
    return [f"{path}: {saved.get(path, '<absent>')} -> {current.get(path, '<absent>')}"
            for path in paths if saved.get(path) != current.get(path)]


class Checkpointer:
    def __init__(self, directory: Path, config: CheckpointConfig, *, record: dict | None = None):
        """`record`: the resolved config, saved with every checkpoint as the `config` item."""
        library_noise.install()
        self.directory = Path(directory).absolute()
        self.config = config
        self.record = record
        self.blocking_s = 0.0  # how long the last save() held up the training loop
        self._writing: int | None = None  # the step being written, for the commit callback
        self._failed = False
        for tmp in sorted(self.directory.glob(f"*{_TMP_MARK}*")):
            logger.warning("checkpoint %s is incomplete (the writer was interrupted); skipping and "
                           "removing it", tmp)
        try:
            self._manager = ocp.CheckpointManager(self.directory, options=self._options(),
                                                  handler_registry=self._handlers())
        except OSError as e:
            raise storage.failed("cannot use the checkpoint directory", self.directory, e) or e

    def _handlers(self) -> ocp.handlers.DefaultCheckpointHandlerRegistry:
        # Bounds the bytes being serialized at once: host memory, not only device memory.
        gb = self.config.inflight_gb
        state = ocp.handlers.StandardCheckpointHandler(save_concurrent_gb=gb, restore_concurrent_gb=gb)
        registry = ocp.handlers.DefaultCheckpointHandlerRegistry()
        for args in (ocp.args.StandardSave, ocp.args.StandardRestore):
            registry.add("state", args, state)
        data = grain.checkpoint.CheckpointHandler()
        for args in (grain.checkpoint.CheckpointSave, grain.checkpoint.CheckpointRestore):
            registry.add("data", args, data)
        for item in ("run", "config"):
            json_handler = ocp.handlers.JsonCheckpointHandler()
            for args in (ocp.args.JsonSave, ocp.args.JsonRestore):
                registry.add(item, args, json_handler)
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
            # Always orbax's async writer: only it runs a callback before the commit (the
            # checksums); mode=sync waits for each write in save().
            enable_async_checkpointing=True, cleanup_tmp_directories=True,
            async_options=ocp.options.AsyncOptions(post_finalization_callback=self._seal),
            preservation_policy=policies.AnyPreservationPolicy(policies=keep),
            # best_fn only makes orbax store the metrics; `keep` above decides what stays.
            best_fn=(lambda metrics: metrics[c.best_metric]) if c.keep_best else None,
            best_mode=c.best_mode.value)

    def _seal(self) -> None:
        """Orbax's post-finalization callback (writer thread): every item is final, the step
        is not yet renamed to <step>. Process 0 writes the checksums of the whole step."""
        if jax.process_index() != 0:
            return
        tmp = sorted(self.directory.glob(f"{self._writing}{_TMP_MARK}*"))
        # Storage without atomic rename (e.g. object stores) writes into <step> directly.
        integrity.write_manifest(tmp[-1] if tmp else self.directory / str(self._writing))

    def newest_intact(self) -> int | None:
        """The newest step whose checksums verify; the ones that fail are set aside (renamed
        `<step>.corrupt-<n>`) with a warning. None if there are no checkpoints at all.

        Raises RunRefused if checkpoints exist or were set aside but none verifies.
        """
        for step in reversed(self._manager.all_steps()):
            path = self.directory / str(step)
            try:
                problem = integrity.verify(path)
            except OSError as e:  # unreadable is not proven corrupt: stop, change nothing
                raise storage.failed("cannot read checkpoint", path, e) or e
            if problem is None:
                return step
            self._set_aside(path, problem)
        if set_aside(self.directory):
            raise RunRefused(
                f"checkpoints exist in {self.directory} but none can be restored (set aside: "
                f"{', '.join(set_aside(self.directory))}); rename a good one back to its step "
                "number, or set name=<new name> to start a new run")
        return None

    def _set_aside(self, path: Path, problem: str) -> None:
        if jax.process_index() != 0:  # every process finds the same damage; process 0 renames it
            return
        n = 1
        while (target := path.with_name(f"{path.name}{_SET_ASIDE}-{n}")).exists():
            n += 1
        path.rename(target)
        logger.warning("checkpoint %s is corrupt: %s; renamed to %s, trying the previous one",
                       path, problem, target.name)
        self._manager.reload()

    def restore(self, step: int, target) -> Restored:
        """Step `step` (verified by newest_intact) in `target`'s shardings.

        Raises ConfigError, leaving the checkpoint as it is, if its tree does not fit `target`.
        """
        path = self.directory / str(step)
        differ = mismatches(leaf_specs(self._manager.item_metadata(step)["state"]), leaf_specs(target))
        if differ:
            shown = differ[:_MAX_LISTED] + ([f"... and {len(differ) - _MAX_LISTED} more"]
                                            if len(differ) > _MAX_LISTED else [])
            raise ConfigError(
                [f"checkpoint {path} does not fit this config (it was left as it is):"] + shown
                + ["to train a new experiment, set name=<new name> or hydra.run.dir=<new dir>"])
        items = {"data": grain.checkpoint.CheckpointRestore(_DataPosition())} \
            if _has_data_position(path) else {}
        started = time.perf_counter()
        try:
            out = self._manager.restore(step, args=ocp.args.Composite(
                state=ocp.args.StandardRestore(target), run=ocp.args.JsonRestore(), **items))
            jax.block_until_ready(out.state)
        except Exception as e:
            raise storage.failed("cannot read checkpoint", path, e) or e
        logger.info("restored checkpoint %s in %.2f s", path, time.perf_counter() - started)
        return Restored(step=step, state=out.state, meta=dict(out.run),
                        data_state=out.data.state if items else None)

    def save(self, step: int, state, *, meta: dict, data_state: dict | None = None,
             metrics: dict | None = None) -> bool:
        """Start writing `state` (and the data loader's position `data_state`, if given) as
        `step`; False if that step is already saved.

        Raises StorageError (the partial step removed) if this or the previous write failed
        for lack of space or a read-only/missing disk.
        """
        if step in self._manager.all_steps():
            return False
        started = time.perf_counter()
        items = {"state": ocp.args.StandardSave(state), "run": ocp.args.JsonSave(meta)}
        if data_state is not None:
            items["data"] = grain.checkpoint.CheckpointSave(_DataPosition(data_state))
        if self.record is not None:
            items["config"] = ocp.args.JsonSave(self.record)
        try:
            self._manager.wait_until_finished()  # save() waits for it anyway; _seal needs _writing
            self._writing = step
            self._manager.save(step, args=ocp.args.Composite(**items), metrics=metrics,
                               force=True)  # when to save is the trainer's decision
            if self.config.mode is SaveMode.sync:
                self._manager.wait_until_finished()
        except Exception as e:
            raise self._write_failed(e)
        self.blocking_s = time.perf_counter() - started
        return True

    def _write_failed(self, error: Exception) -> Exception:
        """Remove the partial step (never committed: no reader can want it) and say why."""
        self._failed = True
        for tmp in self.directory.glob(f"*{_TMP_MARK}*") if jax.process_index() == 0 else ():
            shutil.rmtree(tmp, ignore_errors=True)
        return storage.failed(f"checkpoint of step {self._writing} could not be written to",
                              self.directory, error) or error

    def latest_step(self) -> int | None:
        return self._manager.latest_step()

    def wait(self) -> None:
        try:
            self._manager.wait_until_finished()
        except Exception as e:
            raise self._write_failed(e)

    def close(self) -> None:
        """Wait for the write in flight (a started checkpoint is completed) and stop."""
        try:
            self._manager.close()
        except Exception as e:
            if not self._failed:  # a failure already reported by save() is not raised twice
                raise self._write_failed(e)
        if self._failed:
            for tmp in self.directory.glob(f"*{_TMP_MARK}*"):
                shutil.rmtree(tmp, ignore_errors=True)
