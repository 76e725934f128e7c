"""Goodput: where a run's wall time went. Every second of an attempt (one process start of a
run) is put in one bucket:

    startup      start of train() to the first step (checkpoint restore, initialisation,
                 opening sinks); the program's build and resolution happen before it and are
                 not counted
    compile      the first step of the attempt, from dispatch to its metrics (XLA compilation)
    data_wait    waiting for the loader's next batch
    checkpoint   the blocking part of checkpoint saves (the write itself runs in the background)
    eval         held-out evaluation
    sample       the end-of-run sample
    productive   training steps after the first, less the time lost to restarts

`lost_to_restarts` is the time earlier attempts spent on steps this attempt computes again: an
attempt that reached step R before it stopped, resumed here from checkpoint S < R, lost
(R - S) of its steps. Each attempt records its reach and step time in goodput.json (RunDir) as
it goes, so even a process killed with -9 leaves what the next attempt needs. `goodput` is
productive time over the run's wall time across attempts.
"""

import contextlib
import dataclasses
import json
import os
import time
from pathlib import Path

BUCKETS = ("startup", "compile", "data_wait", "checkpoint", "eval", "sample", "productive")


@dataclasses.dataclass
class Attempt:
    start_step: int
    reached_step: int
    wall_s: float
    step_s: float  # mean productive seconds per step (nan before the second step)
    buckets: dict[str, float]
    lost_steps: int = 0  # steps of earlier attempts this one computes again
    lost_s: float = 0.0  # their time


class Goodput:
    """The wall-time ledger of this attempt, and the earlier attempts' records."""

    def __init__(self, path: Path | None, *, start_step: int, started: float, primary: bool = True):
        """`path`: goodput.json (None: nothing is read or written); only the primary process
        writes it. `started`: the attempt's perf_counter() at its start."""
        self.path = path
        self.primary = primary
        self.started = started
        self.buckets = dict.fromkeys(BUCKETS, 0.0)
        self.start_step = self.reached_step = start_step
        self.steps_timed = 0
        self.earlier = _read(path) if path is not None else []
        self.lost_steps, self.lost_s = _lost(self.earlier, start_step)
        self._last_write = 0.0

    @contextlib.contextmanager
    def span(self, bucket: str):
        """Time the body into `bucket`."""
        began = time.perf_counter()
        try:
            yield
        finally:
            self.buckets[bucket] += time.perf_counter() - began

    def add(self, bucket: str, seconds: float) -> None:
        self.buckets[bucket] += seconds

    def steps(self, reached: int, *, productive_steps: int) -> None:
        """The attempt reached step `reached`; `productive_steps` steps (not the first) are
        timed in `productive` so far. Recorded at most every 10 s (and by `close`)."""
        self.reached_step, self.steps_timed = reached, productive_steps
        if time.perf_counter() - self._last_write > 10.0:
            self.write()

    def wall_s(self) -> float:
        return time.perf_counter() - self.started

    def attempt(self) -> Attempt:
        wall = self.wall_s()
        buckets = dict(self.buckets)
        # What no span took (the loop's own bookkeeping, the dispatch of steps) is the steps'.
        buckets["productive"] = max(0.0, wall - sum(v for k, v in buckets.items() if k != "productive"))
        step_s = buckets["productive"] / self.steps_timed if self.steps_timed else float("nan")
        return Attempt(start_step=self.start_step, reached_step=self.reached_step, wall_s=wall,
                       step_s=step_s, buckets=buckets, lost_steps=self.lost_steps, lost_s=self.lost_s)

    def report(self) -> dict[str, float]:
        """This attempt's buckets, and over every attempt: the time lost to restarts and the
        goodput share of the wall time (summary.json's `goodput`)."""
        attempts = [*self.earlier, self.attempt()]
        wall = sum(a.wall_s for a in attempts)
        lost = sum(a.lost_s for a in attempts)
        productive = sum(a.buckets.get("productive", 0.0) for a in attempts) - lost
        return {**{f"{k}_s": round(v, 3) for k, v in attempts[-1].buckets.items()},
                "attempts": len(attempts), "wall_s_all_attempts": round(wall, 3),
                "lost_to_restarts_s": round(lost, 3),
                "steps_recomputed": sum(a.lost_steps for a in attempts),
                "goodput": round(productive / wall, 4) if wall > 0 else float("nan")}

    def write(self) -> None:
        """goodput.json: the earlier attempts and this one so far (atomically replaced)."""
        self._last_write = time.perf_counter()
        if self.path is None or not self.primary:
            return
        records = [dataclasses.asdict(a) for a in [*self.earlier, self.attempt()]]
        tmp = self.path.with_name(self.path.name + ".tmp")
        try:
            tmp.write_text(json.dumps({"attempts": records}, indent=1))
            os.replace(tmp, self.path)
        except OSError:
            pass  # accounting must never stop a run (a full disk is reported by the checkpoints)


def _read(path: Path) -> list[Attempt]:
    try:
        records = json.loads(path.read_text())["attempts"]
        return [Attempt(**r) for r in records]
    except (OSError, ValueError, KeyError, TypeError):
        return []  # no record (a fresh run) or an unreadable one: nothing earlier is counted


def _lost(earlier: list[Attempt], start: int) -> tuple[int, float]:
    """Steps (and their time) that earlier attempts computed past `start` and that no earlier
    resume counted: attempt i's steps from max(start, its start) up to where the next attempt
    resumed (whose resume counted the rest) or, for the last, to its reach."""
    steps, seconds = 0, 0.0
    for i, a in enumerate(earlier):
        end = min(a.reached_step, earlier[i + 1].start_step if i + 1 < len(earlier) else a.reached_step)
        n = max(0, end - max(start, a.start_step))
        steps, seconds = steps + n, seconds + n * _finite(a.step_s)
    return steps, seconds


def _finite(x: float) -> float:
    return x if x == x and x != float("inf") else 0.0
