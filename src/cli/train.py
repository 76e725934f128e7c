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
from hydralearn.cli.errors import USER_ERROR_EXIT, exit_run_error, exit_with
from hydralearn.cli.rundir import planned_run_dir
from hydralearn.compose import config as compose_config
from hydralearn.compose import xla
from hydralearn.compose.build import build, flops_per_token
from hydralearn.compose.files import read_mapping
from hydralearn.compose.hardware import Host
from hydralearn.compose.plan import make_plan
from hydralearn.compose.resume_rule import compare
from hydralearn.compose.schema import TrainConfig, load
from hydralearn.compose.validate import ConfigError, to_container
from hydralearn.data.pipeline import load_corpus
from hydralearn.runtime import lock, memory_check, rundir, storage
from hydralearn.runtime.checkpoint import committed_steps, saved_config
from hydralearn.runtime.errors import INTERRUPTED_EXIT, RunError
from hydralearn.runtime.trainer import RunStatus, RunSummary, Throughput, train

logger = logging.getLogger(__name__)


def main() -> None:
    # A log file on a full disk must not print a traceback per record (the failure is reported
    # once); the logging docs' advice for production.
    logging.raiseExceptions = False
    claim = None
    try:
        args = preflight.parse_command_line(sys.argv[1:])
        if not (args.help or args.hydra_help or args.info or args.shell_completion):
            sys.argv[1:] = preflight.check(sys.argv[1:])
            if not (args.multirun or args.cfg):  # a sweep claims each job's directory in run()
                overrides = preflight.parse_command_line(sys.argv[1:]).overrides
                claim = rundir.claim(planned_run_dir(overrides))
    except ConfigError as e:
        exit_with(e)
    except RunError as e:
        exit_run_error(e)
    try:
        _hydra_main()
    except SystemExit as e:
        if claim and e.code == USER_ERROR_EXIT:
            claim.abandon()  # refused: a directory this process made is removed again
        raise
    finally:
        if claim:
            claim.release()


@hydra.main(config_path=str(CONF_DIR), config_name="train", version_base="1.3")
def _hydra_main(cfg: DictConfig) -> None:
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    try:
        if lock.held_here(run_dir):  # claimed by main() before Hydra started
            summary = run(cfg, run_dir=run_dir)
        else:  # a sweep's job (or a directory pattern that changes per call, e.g. ${now:...})
            with rundir.claim(run_dir).lock:
                summary = run(cfg, run_dir=run_dir)
    except ConfigError as e:
        exit_with(e)
    except RunError as e:
        exit_run_error(e)
    except KeyboardInterrupt:
        print("hydralearn: error: interrupted (Ctrl-C); the newest checkpoint, if any, is kept",
              file=sys.stderr)
        sys.exit(INTERRUPTED_EXIT)
    except Exception as e:
        failure = storage.failed("storage failed under the run directory", run_dir, e)
        if failure is None:
            raise
        exit_run_error(failure)
    if summary.status is RunStatus.INTERRUPTED:
        sys.exit(INTERRUPTED_EXIT)


def run(cfg: DictConfig, *, run_dir: Path) -> RunSummary:
    # Hydra logs at INFO; JAX's probing of absent backends (TPU, GPU) is noise to users.
    logging.getLogger("jax._src.xla_bridge").setLevel(logging.WARNING)
    config = load(OmegaConf.to_container(cfg, resolve=True))
    # Before anything asks JAX for devices: the backend reads its flags once, at start-up.
    xla.apply(config.hardware.xla_flags, platform=config.hardware.platform)
    config = compose_config.resolve(config, host=Host.current())
    container = to_container(config)
    _check_resume(run_dir, container)
    memory_check.check_fits(make_plan(config).memory.as_dict(),
                            memory_check.device_memory(jax.local_devices()),
                            skip=config.trainer.skip_memory_check)
    return _train(config, run_dir, container)


def _check_resume(run_dir: Path, container: dict) -> None:
    """Refuse (exit 2) to resume checkpoints written by a config that computes something else.

    The config a checkpoint was written with is stored in it; resolved_config.yaml is only
    read for checkpoints that hold none (the restore still compares the state's tree).
    """
    checkpoints = run_dir / "checkpoints"
    if not committed_steps(checkpoints):
        return
    saved = saved_config(checkpoints)
    if saved is None:
        record = run_dir / "resolved_config.yaml"
        if not record.exists():
            return
        saved = read_mapping(record)
    changes = compare(saved=saved, current=container)
    if changes.refused:
        raise ConfigError(
            [f"{line} (cannot change when resuming {run_dir})" for line in changes.refused]
            + ["to train a new experiment, set name=<new name> or hydra.run.dir=<new dir>"])
    for line in changes.allowed:
        logger.info("resuming with a changed setting: %s", line)


def _train(config: TrainConfig, run_dir: Path, container: dict) -> RunSummary:
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
                    checkpoint=config.checkpoint, throughput=throughput, run_dir=run_dir,
                    config_record=container, on_start=lambda: OmegaConf.save(
                        OmegaConf.create(container), run_dir / "resolved_config.yaml"))
    if summary.status in (RunStatus.PREEMPTED, RunStatus.INTERRUPTED):
        print(f"{summary.status.value}: checkpoint saved at step {summary.steps}; run the same "
              "command to resume")
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
