"""One training run from a validated config: everything that can refuse it is checked before
the run directory is touched (`prepare`), then the run (`train_run`) writes it."""

import dataclasses
import json
import logging
from pathlib import Path

from omegaconf import OmegaConf

from hydralearn.compose import xla
from hydralearn.compose.config import to_container
from hydralearn.compose.resume_rule import compare
from hydralearn.compose.schema import TrainConfig
from hydralearn.errors import ConfigError

logger = logging.getLogger(__name__)
RESOLVED_CONFIG = "resolved_config.yaml"


@dataclasses.dataclass(frozen=True)
class Prepared:
    config: TrainConfig  # every auto resolved for the devices this process has
    complete: bool  # the run directory already holds the final checkpoint
    notes: tuple[str, ...] = ()  # logged once the run's logging is set up


@dataclasses.dataclass(frozen=True)
class Failure:
    message: str
    exit_code: int


def prepare(config: TrainConfig, *, run_dir: Path) -> Prepared:
    """XLA flags applied, autos resolved for this host, the resume rule checked; ConfigError if
    the run cannot go on. Nothing is written."""
    # Before anything asks JAX for devices: the backend reads its flags once, at start-up.
    xla.apply(config.hardware.xla_flags, platform=config.hardware.platform)
    # JAX's probing of absent backends (TPU, GPU) is noise to users.
    logging.getLogger("jax._src.xla_bridge").setLevel(logging.WARNING)
    from hydralearn.compose.hardware import Host
    from hydralearn.compose.resolve import resolve
    from hydralearn.runtime.checkpoint import committed_steps

    config = resolve(config, host=Host.current())
    steps = committed_steps(run_dir / "checkpoints")
    allowed = _check_resume(run_dir, to_container(config)) if steps else []
    return Prepared(config=config, complete=bool(steps) and steps[-1] >= config.trainer.steps,
                    notes=tuple(f"resuming with a changed setting: {line}" for line in allowed))


def _check_resume(run_dir: Path, container: dict) -> list[str]:
    """Refuse (exit 2) to resume checkpoints written by a config that computes something else;
    returns the changes that only affect how it runs."""
    saved = run_dir / RESOLVED_CONFIG
    if not saved.exists():
        return []
    changes = compare(saved=OmegaConf.to_container(OmegaConf.load(saved)), current=container)
    if changes.refused:
        raise ConfigError(
            [f"{line} (cannot change when resuming {run_dir})" for line in changes.refused]
            + ["to train a new experiment, set name=<new name> or hydra.run.dir=<new dir>"])
    return changes.allowed


def train_run(prepared: Prepared, *, run_dir: Path):
    """Train in `run_dir` (the job's directory, created by Hydra); returns the RunSummary."""
    import jax

    from hydralearn.compose.build import build, flops_per_token
    from hydralearn.data.pipeline import load_corpus
    from hydralearn.runtime.trainer import RunStatus, Throughput, train

    config = prepared.config
    for note in prepared.notes:
        logger.info(note)
    OmegaConf.save(OmegaConf.create(to_container(config)), run_dir / RESOLVED_CONFIG)
    corpus = load_corpus(config.data)
    program = build(config)
    model = config.model
    throughput = Throughput(
        tokens_per_step=config.data.batch_size * config.data.seq_len,
        flops_per_token=flops_per_token(
            matmul_params=program.matmul_params, num_layers=model.num_layers,
            attention_dim=model.num_heads * model.resolved_head_dim, seq_len=config.data.seq_len),
        peak_flops=config.hardware.peak_flops_per_device * jax.device_count())
    logger.info(f"{config.name}: {program.num_params:,} parameters, mesh {config.mesh.axes}, "
          f"{corpus.description}; run dir {run_dir}")
    summary = train(program, data=config.data, corpus=corpus, trainer=config.trainer,
                    checkpoint=config.checkpoint, throughput=throughput, run_dir=run_dir)
    if summary.status is RunStatus.PREEMPTED:
        logger.info(f"preempted: checkpoint saved at step {summary.steps}; run the same command to resume")
        return summary
    if summary.status is RunStatus.ALREADY_COMPLETE:
        logger.info(f"{run_dir} is already complete ({summary.steps} steps); set name=<new name> for a new run")
        return summary
    logger.info(f"done in {summary.wall_s:.0f}s: train loss {summary.train_loss:.3f}, held-out loss "
          f"{summary.eval_loss:.3f} (unigram baseline {summary.unigram_loss:.3f}), "
          f"{summary.steps_per_s:.2f} steps/s, {summary.tokens_per_s:,.0f} tokens/s, "
          f"MFU {summary.mfu:.1%}")
    if summary.sample:
        logger.info(f"--- sample ---\n{summary.sample}\n--------------")
    return summary


def user_failure(error: Exception) -> Failure | None:
    """A failure the user must act on (one line, its own exit code); None for a crash."""
    from hydralearn.runtime.trainer import NonFiniteLoss

    if isinstance(error, ConfigError):
        return Failure(message="; ".join(error.errors), exit_code=2)
    if isinstance(error, NonFiniteLoss):
        return Failure(message=str(error), exit_code=error.exit_code)
    return None


def record_failure(run_dir: Path, message: str) -> None:
    """A failed sweep point's summary.json: the sweep summary lists it with its reason."""
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "summary.json").write_text(json.dumps({"status": "failed", "reason": message}, indent=2))
