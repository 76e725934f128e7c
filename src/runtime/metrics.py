"""Metrics sinks: JSONL and TensorBoard event files in the run directory, a console progress bar.

metrics.jsonl is append-only across attempts: on a start from step S (0 for a fresh start),
records after S (written by an interrupted process past its last checkpoint) are dropped and
the ones up to S kept; TensorBoard purges the same steps, so both read like one uninterrupted
run. The trainer opens it only once the run is sure to go on (after any refusal).
"""

import json
import math
import os
from pathlib import Path

from tqdm import tqdm


class MetricsLog:
    def __init__(self, run_dir: Path, *, total_steps: int, initial_step: int = 0):
        self.path = Path(run_dir) / "metrics.jsonl"
        if self.path.exists():  # records past the starting step are from an interrupted attempt
            _truncate_after(self.path, initial_step)
        self.file = self.path.open("a")
        # Here, not at module level: tensorboardX imports torch when it is installed (~4 s),
        # which a process that is refused before training must not pay.
        from tensorboardX import SummaryWriter
        self.board = SummaryWriter(str(Path(run_dir) / "tensorboard"), flush_secs=10,
                                   purge_step=initial_step + 1)
        self.shown: dict[str, str] = {}
        self.bar = tqdm(total=total_steps, initial=initial_step, unit="step", dynamic_ncols=True)

    def write(self, step: int, metrics: dict[str, float]) -> None:
        record = {"step": step, **{k: _plain(v) for k, v in metrics.items()}}
        self.file.write(json.dumps(record) + "\n")
        self.file.flush()
        for name, value in metrics.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                self.board.add_scalar(name, value, global_step=step)
        self.show(metrics)

    def show(self, metrics: dict[str, float]) -> None:
        """Update the progress bar's figures (the last value of each is kept)."""
        self.shown |= {k: _short(v) for k, v in metrics.items() if k in _SHOWN}
        self.bar.set_postfix(self.shown, refresh=False)

    def advance(self, steps: int = 1) -> None:
        self.bar.update(steps)

    def print(self, text: str) -> None:
        self.bar.write(text)

    def close(self) -> None:
        self.bar.close()
        self.board.close()
        self.file.close()


class Unlogged:
    """MetricsLog's interface, writing nothing: processes other than 0 of a multi-host job."""

    def write(self, step: int, metrics: dict[str, float]) -> None:
        pass

    def show(self, metrics: dict[str, float]) -> None:
        pass

    def advance(self, steps: int = 1) -> None:
        pass

    def print(self, text: str) -> None:
        pass

    def close(self) -> None:
        pass


_SHOWN = ("loss", "eval_loss", "tokens_per_s", "mfu")


def _truncate_after(path: Path, step: int) -> None:
    """Keep the records of steps <= `step`; the file is replaced atomically (only if needed)."""
    text = path.read_text()
    lines = [line for line in text.splitlines() if _step_of(line) <= step]
    if lines == text.splitlines() and text.endswith("\n"):
        return  # nothing to drop: the file is left as it is
    tmp = path.with_suffix(".jsonl.tmp")
    tmp.write_text("".join(line + "\n" for line in lines))
    os.replace(tmp, path)


def _step_of(line: str) -> float:
    """A record's step; a line cut short by a killed process counts as past every step."""
    try:
        return json.loads(line)["step"]
    except (ValueError, KeyError, TypeError):
        return math.inf


def _plain(value) -> float | int | str:
    if isinstance(value, (int, str)):
        return value
    value = float(value)
    return value if math.isfinite(value) else str(value)


def _short(value) -> str:
    value = float(value)
    return f"{value:.3g}" if abs(value) < 1e4 else f"{value:.0f}"
