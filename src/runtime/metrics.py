"""The run's metric records and its console progress bar.

Each record goes to every sink conf/logger enables (runtime/sinks.py: metrics.jsonl and
TensorBoard by default, W&B, MLflow). Only the primary process (process 0 of a job) writes
records or shows the bar; the others keep no files. The trainer opens the log only once the
run is sure to go on (after any refusal).
"""

from pathlib import Path

from tqdm import tqdm

from hydralearn.config.schema.logger import LoggerConfig
from hydralearn.runtime.sinks import open_sinks


class MetricsLog:
    def __init__(self, run_dir: Path, *, total_steps: int, initial_step: int = 0,
                 sinks: LoggerConfig | None = None, name: str = "", run_config: dict | None = None,
                 primary: bool = True):
        """`sinks`: conf/logger (None: its defaults); `name`, `run_config`: the run's name and
        resolved config, for W&B and MLflow."""
        self.sinks = open_sinks(sinks or LoggerConfig(), run_dir=run_dir, initial_step=initial_step,
                                name=name, run_config=run_config) if primary else []
        self.shown: dict[str, str] = {}
        self.bar = tqdm(total=total_steps, initial=initial_step, unit="step", dynamic_ncols=True,
                        disable=not primary)

    def write(self, step: int, metrics: dict[str, float]) -> None:
        for sink in self.sinks:
            sink.write(step, metrics)
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
        for sink in self.sinks:
            sink.close()


_SHOWN = ("loss", "eval_loss", "tokens_per_s", "mfu", "goodput")


def _short(value) -> str:
    value = float(value)
    return f"{value:.3g}" if abs(value) < 1e4 else f"{value:.0f}"
