"""Where metric records go (conf/logger): metrics.jsonl, TensorBoard, Weights & Biases, MLflow.

Every sink receives the same records (step, name -> value) as metrics.jsonl. A sink's
library is imported when the sink is opened, never at module level: tensorboardX imports
torch when it is installed, and wandb and mlflow take seconds to import, none of which a
refused run, `--cfg` or a plan may pay. Only process 0 of a job opens any (runtime/metrics.py).

On a resume from step S, metrics.jsonl drops its records past S and TensorBoard purges the
same steps; W&B and MLflow keep them (their histories are append-only), so steps logged by an
interrupted attempt after its last checkpoint appear twice there. W&B and MLflow continue the
same run across attempts: its id is kept in the run directory.
"""

import json
import logging
import math
import os
import threading
import time
import uuid
from pathlib import Path
from typing import Protocol

from hydralearn.config.flat import flatten
from hydralearn.config.run_dir import RunDir
from hydralearn.config.schema.logger import LoggerConfig, MlflowConfig, WandbConfig

logger = logging.getLogger(__name__)


class Sink(Protocol):
    def write(self, step: int, metrics: dict[str, float]) -> None: ...

    def close(self) -> None: ...


def open_sinks(config: LoggerConfig, *, run_dir: Path, initial_step: int, name: str,
               run_config: dict | None) -> list[Sink]:
    """The enabled sinks, in the order of config/schema/logger.SINKS."""
    run_dir = Path(run_dir)
    opened: list[Sink] = []
    makers = {
        "jsonl": lambda: JsonlSink(RunDir(run_dir).metrics, initial_step=initial_step),
        "tensorboard": lambda: TensorBoardSink(RunDir(run_dir).tensorboard, initial_step=initial_step),
        "wandb": lambda: WandbSink(config.wandb, run_dir=run_dir, name=name, run_config=run_config),
        "mlflow": lambda: MlflowSink(config.mlflow, run_dir=run_dir, name=name, run_config=run_config),
    }
    try:
        for sink in config.enabled():
            opened.append(makers[sink]())
    except BaseException:
        for sink in opened:
            sink.close()
        raise
    return opened


def scalars(metrics: dict) -> dict[str, float]:
    """The numbers of a record (what TensorBoard, W&B and MLflow plot)."""
    return {k: float(v) for k, v in metrics.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool)}


class JsonlSink:
    """metrics.jsonl, append-only across attempts: records past the starting step (written by
    an interrupted process after its last checkpoint) are dropped when a run resumes."""

    def __init__(self, path: Path, *, initial_step: int):
        if path.exists():
            _truncate_after(path, initial_step)
        self.file = path.open("a")

    def write(self, step: int, metrics: dict[str, float]) -> None:
        record = {"step": step, **{k: _plain(v) for k, v in metrics.items()}}
        self.file.write(json.dumps(record) + "\n")
        self.file.flush()

    def close(self) -> None:
        self.file.close()


class TensorBoardSink:
    """Event files through tensorboardX. Its writer thread dies on a write error (a full disk)
    and leaves its bounded queue to fill; close() then waits forever on that queue. So the
    queue is deep enough for a run's records, and closing gets a bounded time."""

    CLOSE_TIMEOUT_S = 30.0

    def __init__(self, directory: Path, *, initial_step: int):
        from tensorboardX import SummaryWriter

        self.directory = directory
        # A non-finite loss is recorded as it is and reported by the run in one line; the
        # warning tensorboardX logs for each one ("NaN or Inf found in input tensor.") is noise.
        logging.getLogger("tensorboardX.x2num").setLevel(logging.ERROR)
        self.writer = SummaryWriter(str(directory), flush_secs=10, purge_step=initial_step + 1,
                                    max_queue=100_000)

    def write(self, step: int, metrics: dict[str, float]) -> None:
        for name, value in scalars(metrics).items():
            self.writer.add_scalar(name, value, global_step=step)

    def close(self) -> None:
        closer = threading.Thread(target=self.writer.close, name="tensorboard-close", daemon=True)
        closer.start()
        closer.join(self.CLOSE_TIMEOUT_S)
        if closer.is_alive():
            logger.warning("TensorBoard events in %s could not all be written (a full disk?); "
                           "metrics.jsonl holds every record", self.directory)


class WandbSink:
    """Weights & Biases; offline mode writes <run dir>/wandb/ and needs no network or login.
    Every value is plotted against our own `step` (W&B's internal step is not used)."""

    def __init__(self, config: WandbConfig, *, run_dir: Path, name: str, run_config: dict | None):
        import wandb

        self.run = wandb.init(
            project=config.project, entity=config.entity, mode=config.mode.value,
            dir=str(run_dir), name=name, id=_run_id(run_dir / "wandb" / "run_id"), resume="allow",
            config=run_config, settings=wandb.Settings(console="off", silent=True))
        self.run.define_metric("*", step_metric="step")

    def write(self, step: int, metrics: dict[str, float]) -> None:
        self.run.log({**scalars(metrics), "step": step})

    def close(self) -> None:
        self.run.finish()


class MlflowSink:
    """MLflow tracking; by default a SQLite store in the run directory (`mlflow ui
    --backend-store-uri sqlite:///runs/<name>/mlflow.db` shows it). A fresh run records the
    resolved config as the run's parameters."""

    def __init__(self, config: MlflowConfig, *, run_dir: Path, name: str, run_config: dict | None):
        from mlflow.entities import Metric, Param
        from mlflow.tracking import MlflowClient

        for noisy in ("mlflow", "alembic"):  # a new store's migrations log at INFO (set after import:
            logging.getLogger(noisy).setLevel(logging.WARNING)  # mlflow configures its loggers then)

        self._metric = Metric
        uri = config.tracking_uri or f"sqlite:///{Path(run_dir).absolute() / 'mlflow.db'}"
        self.client = MlflowClient(tracking_uri=uri)
        id_file = run_dir / "mlflow_run_id"
        if id_file.exists():
            self.run_id = id_file.read_text().strip()
            self.client.update_run(self.run_id, status="RUNNING")
            return
        experiment = self.client.get_experiment_by_name(config.experiment)
        experiment_id = experiment.experiment_id if experiment else self.client.create_experiment(config.experiment)
        self.run_id = self.client.create_run(experiment_id, run_name=name).info.run_id
        params = [Param(k, str(v)) for k, v in flatten(run_config or {}).items()]
        for i in range(0, len(params), 100):  # MLflow takes at most 100 parameters per call
            self.client.log_batch(self.run_id, params=params[i:i + 100])
        _write_atomically(id_file, self.run_id)

    def write(self, step: int, metrics: dict[str, float]) -> None:
        now = int(time.time() * 1000)
        self.client.log_batch(self.run_id, metrics=[self._metric(k, v, now, step)
                                                    for k, v in scalars(metrics).items()])

    def close(self) -> None:
        self.client.set_terminated(self.run_id)


def _run_id(path: Path) -> str:
    """The id a run keeps across attempts, made on its first start."""
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    run_id = uuid.uuid4().hex[:16]
    _write_atomically(path, run_id)
    return run_id


def _write_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


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
