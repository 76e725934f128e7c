"""`hydralearn-train`: compose, validate, resolve, build and train; a Hydra app.

Every Hydra flag works (--cfg job, -m, --help, +key=value, ~key). Each run's directory
(runs/<name>, deterministic) gets `resolved_config.yaml` (every auto concrete), `checkpoints/`,
`metrics.jsonl`, `tensorboard/` and `summary.json`. Running the same command again resumes
from the newest checkpoint, after checking the config against the saved one.
"""

import logging
import sys
from pathlib import Path

import hydra
import jax  # importing does not start the backend: XLA flags are still applied first
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from hydralearn import CONF_DIR
from hydralearn.cli import preflight
from hydralearn.cli.errors import exit_with
from hydralearn.compose import config as compose_config
from hydralearn.compose import xla
from hydralearn.compose.build import build, flops_per_token
from hydralearn.compose.hardware import Host
from hydralearn.compose.resume_rule import compare
from hydralearn.compose.schema import TrainConfig, load
from hydralearn.compose.validate import ConfigError, to_container
from hydralearn.data.pipeline import load_corpus
from hydralearn.runtime.checkpoint import committed_steps
from hydralearn.runtime.trainer import NonFiniteLoss, RunStatus, RunSummary, Throughput, train

logger = logging.getLogger(__name__)


def main() -> None:
    try:
        args = preflight.parse_command_line(sys.argv[1:])
        if not (args.help or args.hydra_help or args.info or args.shell_completion):
            sys.argv[1:] = preflight.check(sys.argv[1:])
    except ConfigError as e:
        exit_with(e)
    _hydra_main()


@hydra.main(config_path=str(CONF_DIR), config_name="train", version_base="1.3")
def _hydra_main(cfg: DictConfig) -> None:
    try:
        run(cfg, run_dir=Path(HydraConfig.get().runtime.output_dir))
    except ConfigError as e:
        exit_with(e)
    except NonFiniteLoss as e:
        print(f"hydralearn: error: {e}", file=sys.stderr)
        sys.exit(e.exit_code)


def run(cfg: DictConfig, *, run_dir: Path) -> RunSummary:
    # Hydra logs at INFO; JAX's probing of absent backends (TPU, GPU) is noise to users.
    logging.getLogger("jax._src.xla_bridge").setLevel(logging.WARNING)
    config = load(OmegaConf.to_container(cfg, resolve=True))
    # Before anything asks JAX for devices: the backend reads its flags once, at start-up.
    xla.apply(config.hardware.xla_flags, platform=config.hardware.platform)
    config = compose_config.resolve(config, host=Host.current())
    container = to_container(config)
    _check_resume(run_dir, container)
    OmegaConf.save(OmegaConf.create(container), run_dir / "resolved_config.yaml")
    return _train(config, run_dir)


def _check_resume(run_dir: Path, container: dict) -> None:
    """Refuse (exit 2) to resume checkpoints written by a config that computes something else."""
    saved = run_dir / "resolved_config.yaml"
    if not committed_steps(run_dir / "checkpoints") or not saved.exists():
        return
    changes = compare(saved=OmegaConf.to_container(OmegaConf.load(saved)), current=container)
    if changes.refused:
        raise ConfigError(
            [f"{line} (cannot change when resuming {run_dir})" for line in changes.refused]
            + ["to train a new experiment, set name=<new name> or hydra.run.dir=<new dir>"])
    for line in changes.allowed:
        logger.info("resuming with a changed setting: %s", line)


def _train(config: TrainConfig, run_dir: Path) -> RunSummary:
    corpus = load_corpus(config.data)
    program = build(config)
    model = config.model
    throughput = Throughput(
        tokens_per_step=config.data.batch_size * config.data.seq_len,
        flops_per_token=flops_per_token(
            matmul_params=program.matmul_params, num_layers=model.num_layers,
            attention_dim=model.num_heads * model.resolved_head_dim, seq_len=config.data.seq_len),
        peak_flops=config.hardware.peak_flops_per_device * jax.device_count())
    print(f"{config.name}: {program.num_params:,} parameters, mesh {config.mesh.axes}, "
          f"{corpus.description}; run dir {run_dir}")
    summary = train(program, data=config.data, corpus=corpus, trainer=config.trainer,
                    checkpoint=config.checkpoint, throughput=throughput, run_dir=run_dir)
    if summary.status is RunStatus.PREEMPTED:
        print(f"preempted: checkpoint saved at step {summary.steps}; run the same command to resume")
        return summary
    if summary.status is RunStatus.ALREADY_COMPLETE:
        print(f"{run_dir} is already complete ({summary.steps} steps); set name=<new name> for a new run")
        return summary
    print(f"done in {summary.wall_s:.0f}s: train loss {summary.train_loss:.3f}, held-out loss "
          f"{summary.eval_loss:.3f} (unigram baseline {summary.unigram_loss:.3f}), "
          f"{summary.steps_per_s:.2f} steps/s, {summary.tokens_per_s:,.0f} tokens/s, "
          f"MFU {summary.mfu:.1%}")
    if summary.sample:
        print(f"--- sample ---\n{summary.sample}\n--------------")
    return summary


if __name__ == "__main__":
    main()
