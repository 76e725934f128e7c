"""Schemas of conf/trainer (the run loop) and conf/checkpoint (saving and retention)."""

import dataclasses
import enum

from hydralearn.config.schema.hardware import AUTO


class NonFinite(enum.Enum):
    """What a step with a non-finite loss or gradient norm does."""
    stop = "stop"  # end the run with an error naming the step (exit code 3)
    skip = "skip"  # keep parameters and optimizer state unchanged; counted in `skipped_steps`


@dataclasses.dataclass(kw_only=True)
class ProfileConfig:
    # [first, last]: trace these steps (numbered as in metrics.jsonl, from 1; both included)
    # with the JAX profiler into <run dir>/profile. []: off. A pair set together, so a list.
    steps: list[int] = dataclasses.field(default_factory=list)

    def errors(self, *, total_steps: int) -> list[str]:
        if not self.steps:
            return []
        if len(self.steps) != 2 or not 1 <= self.steps[0] <= self.steps[1] <= total_steps:
            return [f"trainer.profile.steps={list(self.steps)} must be [first, last] with "
                    f"1 <= first <= last <= trainer.steps={total_steps}, e.g. [5, 7]; [] for no trace"]
        return []


@dataclasses.dataclass(kw_only=True)
class TrainerConfig:
    steps: int = 150
    # Microbatches per step: the global batch (data.batch_size) is split into this many, run one
    # after another inside the jitted step, their gradients summed in float32, then one update.
    grad_accum: int = 1
    log_every: int = 10
    eval_every: int = 50  # 0: only at the end
    eval_batches: int = 8
    sample_tokens: int = 200  # 0: no end-of-run sample
    sample_prompt: str = "def "
    sample_temperature: float = 0.8
    nonfinite: NonFinite = NonFinite.stop
    # Seconds without a completed step before the watchdog dumps stacks and exits (0: off).
    # Armed after the first step, so compilation does not count.
    watchdog_s: float = 600.0
    # Start even if the planned memory per device exceeds the device's (runtime/memory_check.py).
    skip_memory_check: bool = False
    profile: ProfileConfig = dataclasses.field(default_factory=ProfileConfig)
    # JAX's persistent compilation cache (compose/cache.py), so a rerun, resume or sweep point
    # with an unchanged step starts in seconds: `auto` (JAX_COMPILATION_CACHE_DIR if set, else
    # ~/.cache/hydralearn/jax, under $XDG_CACHE_HOME if set), a directory, or null/'' for none.
    # A run records the directory, absolute; plans and goldens keep `auto`.
    compile_cache: str | None = AUTO

    def errors(self) -> list[str]:
        out = [f"trainer.{n}={getattr(self, n)} must be positive"
               for n in ("steps", "grad_accum", "log_every", "eval_batches") if getattr(self, n) <= 0]
        out += [f"trainer.{n}={getattr(self, n)} must be >= 0"
                for n in ("eval_every", "sample_tokens", "sample_temperature", "watchdog_s")
                if getattr(self, n) < 0]
        return out + self.profile.errors(total_steps=self.steps)


# `async` is a Python keyword, so the enum is built from names.
SaveMode = enum.Enum("SaveMode", {
    "async": "async",  # training continues while tensorstore writes; only device->host blocks
    "sync": "sync",  # the step waits for the write to finish
})


class BestMode(enum.Enum):
    min = "min"
    max = "max"


@dataclasses.dataclass(kw_only=True)
class CheckpointConfig:
    every_steps: int = 100  # save period in steps; 0: only at the end and on SIGTERM
    keep_last: int = 3  # keep the newest N
    keep_every_steps: int = 0  # also keep steps that are multiples of this (0: none)
    keep_best: int = 0  # also keep the N best by `best_metric` (evaluated at saving steps)
    best_metric: str = "eval_loss"
    best_mode: BestMode = BestMode.min
    mode: SaveMode = SaveMode["async"]
    inflight_gb: int = 96  # at most this many GB being written or read at once; lower it when host RAM is short

    def errors(self) -> list[str]:
        out = [f"checkpoint.{n}={getattr(self, n)} must be >= 0"
               for n in ("every_steps", "keep_every_steps", "keep_best") if getattr(self, n) < 0]
        if self.inflight_gb < 1:
            out.append(f"checkpoint.inflight_gb={self.inflight_gb} must be at least 1")
        if self.keep_last < 1:
            out.append(f"checkpoint.keep_last={self.keep_last} must be at least 1 (the latest "
                       "checkpoint is the one a resumed job needs)")
        return out
