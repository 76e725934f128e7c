"""Metrics sinks: a JSONL file in the run directory and a progress bar on the console."""

import json
import math
from pathlib import Path

from tqdm import tqdm


class MetricsLog:
    def __init__(self, run_dir: Path, *, total_steps: int, initial_step: int = 0):
        self.path = Path(run_dir) / "metrics.jsonl"
        self.file = self.path.open("a")
        self.shown: dict[str, str] = {}
        self.bar = tqdm(total=total_steps, initial=initial_step, unit="step", dynamic_ncols=True)

    def write(self, step: int, metrics: dict[str, float]) -> None:
        record = {"step": step, **{k: _plain(v) for k, v in metrics.items()}}
        self.file.write(json.dumps(record) + "\n")
        self.file.flush()
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
        self.file.close()


_SHOWN = ("loss", "eval_loss", "tokens_per_s", "mfu")


def _plain(value) -> float | int | str:
    if isinstance(value, (int, str)):
        return value
    value = float(value)
    return value if math.isfinite(value) else str(value)


def _short(value) -> str:
    value = float(value)
    return f"{value:.3g}" if abs(value) < 1e4 else f"{value:.0f}"
