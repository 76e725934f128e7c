"""The one rule for what a config change does to a checkpoint, shared by every tool that asks
(`hydralearn-diff`, and any resume check): each dotted key falls in one of three kinds.

- SHAPE: defines the shape, dtype or structure of parameters or optimizer state; a checkpoint
  saved before the change cannot be restored after it.
- TRAINING: restorable, but the run continues differently (learning rate, data, seed, the
  model's maths without new shapes such as rope_theta or a norm's eps).
- PERFORMANCE: restorable and the same maths; only how it runs changes (hardware, mesh,
  sharding, remat, kernel, logging, profiling, and trainer.grad_accum: the same global batch
  in more or fewer microbatches); a checkpoint is resharded on restore.
- CONTINUATION: restorable; changes only the steps not taken yet: `trainer.steps` (a finished
  run trained further, or a running one ended sooner). The learning-rate schedule is laid out
  over it, so the rate of the remaining steps may change: the resume says how (runtime/run.py).

Keys are matched by their dotted prefix (first match wins, most specific first); a key under
`model` that is not listed is TRAINING unless its leaf name is a shape field: `_target_`
(another layer), or a field that a registered layer config declares with `shape` metadata
(layers/registry.py), so a new layer needs no edit here. New groups add their prefixes here.
Where both configs are at hand, `hydralearn.review.diff` also compares the abstract parameter
and optimizer-state trees, which is exact; this rule labels each key.

A resumed run may make PERFORMANCE and CONTINUATION changes only (`compare`); anything else
would silently make a different run, so `hydralearn-train` refuses it. Unknown keys are never PERFORMANCE:
new options are safe until listed here.
"""

import dataclasses
import enum

from hydralearn.config.flat import flatten

from hydralearn.config.store import register_schemas
from hydralearn.layers import registry


class Effect(enum.Enum):
    SHAPE = "shape"
    TRAINING = "training"
    PERFORMANCE = "performance"
    CONTINUATION = "continuation"


# (key or dotted prefix, effect); a rule matches the key itself and every key below it.
# The PERFORMANCE entries are the "execution-only" changes a resumed run may make (`init`
# only seeds a fresh run: a resumed run takes its own checkpoint whatever init says).
RULES: tuple[tuple[str, Effect], ...] = (
    *((key, Effect.PERFORMANCE) for key in (
        "name", "plugins", "init", "hardware", "distributed", "mesh", "sharding", "remat", "kernel",
        "checkpoint",
        "logger", "trainer.grad_accum", "trainer.profile", "trainer.log_every",
        "trainer.eval_every", "trainer.eval_batches", "trainer.sample_tokens",
        "trainer.sample_prompt", "trainer.sample_temperature", "trainer.nonfinite",
        "trainer.watchdog_s", "trainer.skip_memory_check", "trainer.compile_cache",
        "data.read_threads", "data.prefetch_batches")),
    ("trainer.steps", Effect.CONTINUATION),
    ("model.compute_dtype", Effect.TRAINING),
    ("optim._target_", Effect.SHAPE),  # another optimizer keeps other state
    ("optim", Effect.TRAINING),
    ("schedule", Effect.TRAINING),
    ("data", Effect.TRAINING),
    ("trainer", Effect.TRAINING),
    ("seed", Effect.TRAINING),
)


def classify(key: str) -> Effect:
    """The effect of changing dotted `key` on a checkpoint."""
    for prefix, effect in RULES:
        if key == prefix or key.startswith(prefix + "."):
            return effect
    if key.startswith("model."):
        return Effect.SHAPE if key.rpartition(".")[2] in _shape_fields() else Effect.TRAINING
    return Effect.TRAINING


def _shape_fields() -> frozenset[str]:
    """Leaf names that define parameter shapes or dtypes wherever they sit under `model`."""
    register_schemas()  # the layers of installed plugins are registered, hydralearn's among them
    return registry.shape_fields() | {"_target_"}


@dataclasses.dataclass(frozen=True)
class ConfigChanges:
    allowed: list[str]  # "key: old -> new", PERFORMANCE and CONTINUATION
    refused: list[str]  # "key: old -> new", changes what the run computes


_ABSENT = "<absent>"


def compare(*, saved: dict, current: dict) -> ConfigChanges:
    """Differences between two plain config containers, split by whether a resume may go on."""
    old, new = flatten(saved), flatten(current)
    allowed, refused = [], []
    for key in sorted(old.keys() | new.keys()):
        before, after = old.get(key, _ABSENT), new.get(key, _ABSENT)
        if before == after:
            continue
        line = f"{key}: {before!r} -> {after!r}"
        resumable = classify(key) in (Effect.PERFORMANCE, Effect.CONTINUATION)
        (allowed if resumable else refused).append(line)
    return ConfigChanges(allowed=allowed, refused=refused)
