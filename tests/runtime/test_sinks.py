"""The metric sinks of a real run: W&B (offline) and MLflow record the same values as
metrics.jsonl; only the primary process writes.

The W&B and MLflow tests run where their extras are installed (`pip install -e
'.[test,wandb,mlflow]'`) and are skipped otherwise. W&B's offline run is read back from its
own transaction log (LevelDB log framing of wandb's protobuf records)."""

import dataclasses
import importlib.util
import json
import struct
from pathlib import Path

import pytest

from hydralearn.config.compose import to_container
from hydralearn.config.schema import LoggerConfig
from hydralearn.data.pipeline import load_corpus
from hydralearn.runtime.metrics import MetricsLog
from hydralearn.runtime.trainer import Throughput, train

HAVE = {name: importlib.util.find_spec(name) is not None for name in ("wandb", "mlflow")}
STEPS = 3


@pytest.fixture(scope="module")
def logged(tiny_program, tmp_path_factory) -> Path:
    """A 3-step run, every step logged, with every sink whose package is installed."""
    if not any(HAVE.values()):
        pytest.skip("neither wandb nor mlflow is installed (pip install 'hydralearn[wandb,mlflow]')")
    run_dir = tmp_path_factory.mktemp("sinks")
    config = tiny_program.config
    trainer = dataclasses.replace(config.trainer, steps=STEPS, log_every=1, eval_batches=1,
                                  sample_tokens=0)
    train(tiny_program, data=config.data, corpus=load_corpus(config.data), trainer=trainer,
          checkpoint=config.checkpoint, run_dir=run_dir, config_record=to_container(config),
          sinks=LoggerConfig(sinks={"jsonl": True, "tensorboard": False, **HAVE}),
          throughput=Throughput(tokens_per_step=1, flops_per_token=1.0, peak_flops=1.0))
    return run_dir


def jsonl_values(run_dir: Path) -> dict[tuple[int, str], float]:
    """(step, name) -> value of every number in metrics.jsonl."""
    out = {}
    for line in (run_dir / "metrics.jsonl").read_text().splitlines():
        record = json.loads(line)
        out |= {(record["step"], k): float(v) for k, v in record.items()
                if k != "step" and isinstance(v, (int, float))}
    return out


@pytest.mark.skipif(not HAVE["wandb"], reason="wandb is not installed (pip install 'hydralearn[wandb]')")
def test_wandb_offline_run_records_the_jsonl_values(logged):
    (log_file,) = logged.glob("wandb/offline-run-*/run-*.wandb")
    got = {}
    for row in wandb_history(log_file):
        got |= {(row["step"], k): float(v) for k, v in row.items()
                if k != "step" and not k.startswith("_")}
    expected = jsonl_values(logged)
    assert len(expected) > 3 * STEPS and {s for s, _ in expected} == set(range(1, STEPS + 1))
    assert got.keys() == expected.keys()
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, rel=1e-7), key


@pytest.mark.skipif(not HAVE["mlflow"], reason="mlflow is not installed (pip install 'hydralearn[mlflow]')")
def test_mlflow_run_records_the_jsonl_values(logged, tiny_program):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{logged / 'mlflow.db'}")
    run = client.get_run((logged / "mlflow_run_id").read_text().strip())
    assert run.info.run_name == tiny_program.config.name and run.info.status == "FINISHED"
    assert run.data.params["optim.lr"] == str(tiny_program.config.optim.lr)  # the resolved config
    expected = jsonl_values(logged)
    got = {(m.step, name): m.value for name in {k for _, k in expected}
           for m in client.get_metric_history(run.info.run_id, name)}
    assert got.keys() == expected.keys()
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, rel=1e-7), key


def test_only_the_primary_process_writes(tmp_path):
    log = MetricsLog(tmp_path, total_steps=2, primary=False)
    log.write(1, {"loss": 1.0})
    log.close()
    assert not list(tmp_path.iterdir())


def wandb_history(path: Path) -> list[dict]:
    """The `history` records (one per logged step) of a .wandb file: a 7-byte header
    (":W&B", magic, version), then LevelDB log records in 32 KiB blocks, each a
    wandb_internal_pb2.Record."""
    from wandb.proto import wandb_internal_pb2

    data = path.read_bytes()
    assert data[:4] == b":W&B", data[:7]
    rows, pos, pending = [], 7, b""
    while pos + 7 <= len(data):
        if 32768 - pos % 32768 < 7:  # a block's tail too short for a header is padding
            pos += 32768 - pos % 32768
            continue
        _, length, kind = struct.unpack("<IHB", data[pos:pos + 7])  # crc32c, length, type
        pending += data[pos + 7:pos + 7 + length]
        pos += 7 + length
        if kind in (1, 4):  # FULL or LAST: the record is complete
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            pending = b""
            if record.WhichOneof("record_type") == "history":
                rows.append({item.key or "/".join(item.nested_key): json.loads(item.value_json)
                             for item in record.history.item})
    return rows


def test_a_non_finite_value_reaches_tensorboard_without_a_library_warning(tmp_path, caplog):
    import logging

    from hydralearn.runtime.sinks import TensorBoardSink

    sink = TensorBoardSink(tmp_path, initial_step=0)
    with caplog.at_level(logging.WARNING):
        sink.write(1, {"loss": float("nan"), "grad_norm": float("inf")})
        sink.close()
    assert [r.getMessage() for r in caplog.records] == []  # tensorboardX says "NaN or Inf found ..."
    assert list(tmp_path.glob("events.out.tfevents.*"))
