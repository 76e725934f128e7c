"""One training run from a validated config, orchestrated: `execute` (a run) and `execute_point`
(a point of a sweep) start the processes, claim the run directory, resolve and check, then
train. Everything that can refuse a run is checked before the run directory is written
(`claimed` creates and locks it, `prepare` resolves and checks), then the run (`train_run`)
writes it; a refused run leaves no directory it created. cli/train.py parses, calls these and
prints."""

import contextlib
import dataclasses
import json
import logging
import sys
from pathlib import Path
from typing import Any, Callable, Iterator

from omegaconf import OmegaConf

from hydralearn.compose import cache, xla
from hydralearn.config.compose import to_container
from hydralearn.config.files import read_mapping
from hydralearn.config.run_dir import RunDir, split_step
from hydralearn.config.resume_rule import compare
from hydralearn.config.schema import TrainConfig
from hydralearn.errors import ConfigError
from hydralearn.exit_codes import INTERRUPTED_EXIT, SUCCESS_EXIT, USER_ERROR_EXIT
from hydralearn.runtime import init_sources
from hydralearn.runtime.hydra_job import Record

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Prepared:
    config: TrainConfig  # every auto resolved for the devices this process has
    complete: bool  # the run directory already holds the final checkpoint, intact
    notes: tuple[str, ...] = ()  # logged once the run's logging is set up
    inputs: Any = None  # the data's opened sources (data/inputs.py); None for data=synthetic


def execute(config: TrainConfig, *, record: Record, config_name: str) -> int:
    """Train `config` in the run directory of Hydra's `record`; the exit code. The run goes
    through Hydra's job runner (which writes `.hydra/` there) once it is sure to go on."""
    run_dir = record.run_dir
    init_sources.check(config, run_dir=run_dir)  # before the run directory exists
    start_processes(config)
    with claimed(run_dir, hosts=config.hardware.hosts) as claim:
        prepared = prepare(config, run_dir=run_dir)
        if prepared.complete:  # nothing to do, so nothing in the run directory is touched
            print(f"{run_dir} is already complete; set name=<new name> for a new run")
            return SUCCESS_EXIT
        claim.started = True
        record.quiet_unless_primary()
        return exit_code(record.run(config, lambda: train_run(prepared, run_dir=run_dir),
                                    config_name=config_name))


def execute_point(make_config: Callable[[], TrainConfig], *, run_dir: Path) -> None:
    """One point of a multirun (checked before launch) in the directory Hydra made for it; a
    failing point is recorded there (summary.json) and logged, so the sweep goes on."""
    try:
        config = make_config()
        init_sources.check(config, run_dir=run_dir)
        start_processes(config)
        with claimed(run_dir, hosts=config.hardware.hosts) as claim:
            claim.started = True  # Hydra has written its record here already: keep the directory
            prepared = prepare(config, run_dir=run_dir)
            if not prepared.complete:
                train_run(prepared, run_dir=run_dir)
    except Exception as e:  # noqa: BLE001 - a failed point must not end the sweep
        found = failure_line(e, run_dir)
        message = found[0] if found else f"{type(e).__name__}: {e}"
        logger.error("sweep point failed: %s", message)
        record_failure(run_dir, message)


def start_processes(config: TrainConfig) -> None:
    """XLA flags and the compilation cache applied and, for a multi-host job, this process joined
    to the others (which must have composed the same config). Before anything asks JAX for
    devices: the backend reads its flags once, and the distributed runtime must start before it."""
    xla.apply(config.hardware.xla_flags, platform=config.hardware.platform)
    cache.use(config.trainer.compile_cache)
    # JAX's probing of absent backends (TPU, GPU) is noise to users.
    logging.getLogger("jax").setLevel(logging.WARNING)  # the public parent of its modules' loggers
    if config.hardware.hosts > 1:
        from hydralearn.runtime import distributed

        distributed.start(config.distributed, config.hardware)
        distributed.check_same_config(to_container(config))


@contextlib.contextmanager
def claimed(run_dir: Path, *, hosts: int = 1) -> Iterator:
    """The run directory created (if needed), proven writable and locked for this process (of
    a multi-host job: by process 0 for the whole job, and every process refuses if it cannot).
    If the body raises before the run starts (`started` not marked), a directory made here is
    removed again; the lock is released at the end either way."""
    from hydralearn.runtime import rundir

    claim = rundir.claim(run_dir) if hosts == 1 else _claim_for_job(run_dir)
    try:
        yield claim
    except BaseException:
        if not claim.started:
            claim.abandon()
        raise
    finally:
        claim.release()


def _claim_for_job(run_dir: Path):
    from hydralearn.runtime import distributed, rundir
    from hydralearn.runtime.errors import RunError, RunRefused

    claim = failure = None
    try:
        claim = rundir.claim(run_dir, primary=distributed.is_primary())
    except RunError as e:
        failure = e
    if distributed.all_ok(failure is None):  # a collective: no process waits on a refused one
        return claim
    if claim is not None:
        claim.abandon()
    raise failure or RunRefused(f"process 0 of this job could not take {run_dir} (its log says "
                                "why); every process of the job stops")


def prepare(config: TrainConfig, *, run_dir: Path) -> Prepared:
    """The data opened and checked, autos resolved for this host (after `start_processes`),
    the resume rule and the memory pre-check passed; ConfigError if the run cannot go on.
    Nothing is written."""
    from hydralearn.data.config import Source
    from hydralearn.data.inputs import open_inputs

    # Bad input is reported before any JAX work (a corpus can take a while to scan).
    inputs = None if config.data.source is Source.synthetic else open_inputs(config.data)
    import jax

    from hydralearn.compose.hardware import Host
    from hydralearn.compose.resolve import resolved
    from hydralearn.review.plan import make_plan
    from hydralearn.runtime import integrity, memory_check
    from hydralearn.runtime.checkpoint import committed_steps

    found = resolved(config, host=Host.current())
    config = found.config
    run = RunDir(run_dir)
    steps = committed_steps(run.checkpoints)
    allowed = _check_resume(run_dir, config, step=steps[-1]) if steps else []
    memory_check.check_fits(make_plan(config, params=found.params).memory.as_dict(),
                            memory_check.device_memory(jax.local_devices()),
                            skip=config.trainer.skip_memory_check)
    # Finished only if the final checkpoint verifies; a damaged one is the trainer's to handle.
    complete = bool(steps) and steps[-1] >= config.trainer.steps \
        and integrity.verify(run.checkpoint(steps[-1])) is None
    return Prepared(config=config, complete=complete, inputs=inputs,
                    notes=tuple(f"resuming with a changed setting: {line}" for line in allowed))


def _check_resume(run_dir: Path, config: TrainConfig, *, step: int) -> list[str]:
    """Refuse (exit 2) to resume checkpoints written by a config that computes something else;
    returns the changes that only affect how it runs or the steps not taken yet (with what a
    new length does to the learning rate from `step`, the newest checkpoint's). The config a
    checkpoint was written with is stored in it; resolved_config.yaml is read only for
    checkpoints that hold none."""
    container = to_container(config)
    from hydralearn.runtime.checkpoint import saved_config

    saved = saved_config(RunDir(run_dir).checkpoints)
    if saved is None:
        record = RunDir(run_dir).resolved_config
        if not record.exists():
            return []
        saved = read_mapping(record)
    changes = compare(saved=saved, current=container)
    if changes.refused:
        raise ConfigError(
            [f"{line} (cannot change when resuming {run_dir})" for line in changes.refused]
            + ["to train a new experiment, set name=<new name> or hydra.run.dir=<new dir>"])
    return [_with_schedule_effect(line, saved, config, step) for line in changes.allowed]


def _with_schedule_effect(line: str, saved: dict, config: TrainConfig, step: int) -> str:
    """A change of trainer.steps, with what it does to the learning rate from `step` on."""
    if not line.startswith("trainer.steps:"):
        return line
    from hydralearn.compose.optim import build_optimizer
    from hydralearn.config.compose import from_container

    old_config = from_container(saved)
    if config.trainer.steps <= step:
        return f"{line}: the run ends at its newest checkpoint, step {step}"

    def rate(c: TrainConfig, at: int) -> float:
        return float(build_optimizer(c.optim, schedule=c.schedule, total_steps=c.trainer.steps).schedule(at))
    old, new = rate(old_config, min(step, old_config.trainer.steps)), rate(config, step)
    kind = type(config.schedule).__name__.removesuffix("Config").lower()  # as conf/schedule names it
    if abs(new - old) <= 1e-6 * max(abs(old), 1e-12):
        return (f"{line}: continues from step {step} at the same learning rate ({new:.3g}); "
                f"the {kind} schedule now ends at step {config.trainer.steps}")
    advice = ("the rate had begun its decay: a continuation belongs before the decay phase (start "
              "a new run from an earlier checkpoint with init.checkpoint=<run dir>@<step>)"
              if kind == "wsd" else "a run meant to be continued is best trained with schedule=wsd, "
              "whose rate stays constant until its decay phase")
    return (f"{line}: the {kind} schedule is laid out over trainer.steps, so from step {step} the "
            f"learning rate goes from {old:.3g} (the old schedule) to {new:.3g} (the new one), then "
            f"follows the new schedule to step {config.trainer.steps}; {advice}")


def train_run(prepared: Prepared, *, run_dir: Path):
    """Train in `run_dir` (the job's directory); returns the RunSummary. Ctrl-C and SIGTERM
    only set a flag from here on (runtime/preemption.py), checked where stopping is safe: an
    interrupt raised inside XLA's compiler or a JAX callback could crash the process or be
    swallowed there."""
    import jax

    from hydralearn.runtime.preemption import Preemption
    from hydralearn.runtime.trainer import RunStatus

    with Preemption(multi_process=jax.process_count() > 1) as preemption:
        summary = _train_run(prepared, run_dir=run_dir, preemption=preemption)
        if summary.status not in (RunStatus.INTERRUPTED, RunStatus.PREEMPTED):
            preemption.raise_if_interrupted()  # e.g. during the end-of-run sample
        return summary


def _train_run(prepared: Prepared, *, run_dir: Path, preemption):
    import jax

    from hydralearn.compose.build import build, flops_per_token
    from hydralearn.compose.peak import remeasured_cpu_peak
    from hydralearn.config.schema import Platform
    from hydralearn.data.loader import Loader
    from hydralearn.runtime.trainer import RunStatus, Throughput, train

    config = prepared.config
    for note in prepared.notes:
        logger.info(note)
    container = to_container(config)
    loader = Loader(config.data, inputs=prepared.inputs,
                    process=(jax.process_index(), jax.process_count()))
    program = build(config)
    model, hardware = config.model, config.hardware
    throughput = Throughput(
        tokens_per_step=config.data.batch_size * config.data.seq_len,
        flops_per_token=flops_per_token(
            matmul_params=program.matmul_params, num_layers=model.num_layers,
            attention_dim=model.num_heads * model.resolved_head_dim, seq_len=config.data.seq_len),
        peak_flops=hardware.peak_flops_per_device * jax.device_count(),
        # A CPU's peak is measured (its `auto`, or a stated number a run proves low); each
        # process of a CPU job measures its own host.
        remeasure=(lambda: remeasured_cpu_peak() * hardware.hosts)
        if hardware.platform is Platform.cpu else None)
    logger.info(f"{config.name}: {program.num_params:,} parameters, mesh {config.mesh.axes}, "
                f"{loader.description}; run dir {run_dir}")
    summary = train(program, loader=loader, trainer=config.trainer,
                    checkpoint=config.checkpoint, throughput=throughput, run_dir=run_dir,
                    sinks=config.logger, config_record=container, on_start=lambda: OmegaConf.save(
                        OmegaConf.create(container), RunDir(run_dir).resolved_config),
                    initial=initial_start(config, program), preemption=preemption)
    if summary.status in (RunStatus.PREEMPTED, RunStatus.INTERRUPTED):
        logger.info(f"{summary.status.value}: checkpoint saved at step {summary.steps}; run the "
                    "same command to resume")
        return summary
    if summary.status is RunStatus.ALREADY_COMPLETE:
        logger.info(f"{run_dir} is already complete ({summary.steps} steps); set name=<new name> "
                    "for a new run")
        return summary
    logger.info(f"done in {summary.wall_s:.0f}s: train loss {summary.train_loss:.3f}, held-out loss "
                f"{summary.eval_loss:.3f} ({summary.bits_per_byte:.3f} bits/byte; unigram baseline "
                f"{summary.unigram_loss:.3f}), "
                f"{summary.steps_per_s:.2f} steps/s, {summary.tokens_per_s:,.0f} tokens/s, "
                f"MFU {summary.mfu:.1%}, goodput {summary.goodput.get('goodput', float('nan')):.0%}")
    if summary.sample:
        logger.info(f"--- sample ---\n{summary.sample}\n--------------")
    return summary


def initial_start(config: TrainConfig, program):
    """The trainer's Start for conf/init (None: random initialisation)."""
    from hydralearn.runtime.trainer import Start

    if config.init.checkpoint:
        return Start(source=f"the weights of {config.init.checkpoint}",
                     make=lambda: from_checkpoint(config.init.checkpoint, program,
                                                  optimizer=config.init.checkpoint_optimizer))
    if not config.init.hf:
        return None
    from hydralearn.interop import hf

    def make():
        return hf.initial_state(program, hf.load_params(config.init.hf, config,
                                                        shardings=program.plain_shardings))
    return Start(source=f"Hugging Face weights in {config.init.hf}", make=make)


def from_checkpoint(where: str, program, *, optimizer: bool):
    """Step 0 of a new run holding another run's weights (and optimizer state if `optimizer`)."""
    import jax
    import jax.numpy as jnp

    from hydralearn.runtime import restore

    checkpoint = restore.find(*split_step(where))
    if not optimizer:
        params, _ = restore.merged(restore.params_on_one_device(checkpoint), checkpoint.config)
        return program.start_from(jax.device_put(params, program.plain_shardings))
    state = restore.full_state(checkpoint, program)
    return dataclasses.replace(state, step=jnp.zeros_like(state.step))


def exit_code(summary) -> int:
    """0, or the exit code of a run that stopped early on purpose (Ctrl-C: 130)."""
    from hydralearn.runtime.trainer import RunStatus

    interrupted = summary is not None and summary.status is RunStatus.INTERRUPTED
    return INTERRUPTED_EXIT if interrupted else SUCCESS_EXIT


def failure_line(error: BaseException, run_dir: Path) -> tuple[str, int] | None:
    """(one line, exit code) for a failure the user must act on; None for a crash."""
    from hydralearn.runtime import storage
    from hydralearn.runtime.errors import INTERRUPTED_LINE, RunError

    if isinstance(error, ConfigError):
        return "; ".join(error.errors), USER_ERROR_EXIT
    if isinstance(error, RunError):
        return str(error), error.exit_code
    if isinstance(error, KeyboardInterrupt):
        return INTERRUPTED_LINE, INTERRUPTED_EXIT
    found = storage.failed("storage failed under the run directory", run_dir, error) \
        if isinstance(error, Exception) else None
    return (str(found), found.exit_code) if found else None


def record_failure(run_dir: Path, message: str) -> None:
    """A failed sweep point's summary.json: the sweep summary lists it with its reason."""
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        RunDir(run_dir).summary.write_text(json.dumps({"status": "failed", "reason": message},
                                                      indent=2))
    except OSError as e:
        print(f"hydralearn: error: cannot record the failure in {run_dir}: {e}", file=sys.stderr)
