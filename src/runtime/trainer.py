"""The training loop: data -> jitted step -> metrics, periodic eval and checkpoints.

A run resumes from the newest complete checkpoint in <run_dir>/checkpoints. Everything a step
depends on is restored from it: the TrainState (step, params, optimizer state) and the data
loader's position (its Grain iterator state); no step draws randomness, so the steps after a
resume are bit-identical to an uninterrupted run's.
"""

import contextlib
import dataclasses
import enum
import json
import logging
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import numpy as np

from hydralearn.compose.build import Program
from hydralearn.config.run_dir import RunDir
from hydralearn.config.schema import CheckpointConfig, LoggerConfig, NonFinite, Source, TrainerConfig
from hydralearn.data.loader import HostBatch, Loader
from hydralearn.exit_codes import NONFINITE_EXIT
from hydralearn.runtime.checkpoint import Checkpointer, abstract_state
from hydralearn.runtime.errors import RunError, RunRefused
from hydralearn.runtime.generate import Generator, complete
from hydralearn.runtime.goodput import Goodput
from hydralearn.runtime.metrics import MetricsLog
from hydralearn.runtime.preemption import Preemption
from hydralearn.runtime.profile import Profiler
from hydralearn.runtime.sampling import Sampling
from hydralearn.runtime.text import chat_codec, codec_of
from hydralearn.runtime.watchdog import Watchdog

logger = logging.getLogger(__name__)


class RunStatus(enum.Enum):
    COMPLETED = "completed"
    PREEMPTED = "preempted"  # SIGTERM: checkpoint saved at `steps`; run again to resume
    INTERRUPTED = "interrupted"  # Ctrl-C: checkpoint saved at `steps`; run again to resume
    ALREADY_COMPLETE = "already_complete"  # the newest checkpoint is at trainer.steps


class NonFiniteLoss(RunError):
    """A step produced a non-finite loss or gradient norm with trainer.nonfinite=stop."""
    exit_code = NONFINITE_EXIT


@dataclasses.dataclass(frozen=True)
class RunSummary:
    status: RunStatus
    steps: int  # steps completed, counting those before a resume
    resumed_from: int  # 0 for a fresh start
    skipped_steps: int  # steps whose update was dropped (trainer.nonfinite=skip)
    train_loss: float = float("nan")  # last step's training loss
    eval_loss: float = float("nan")  # held-out loss at the end, nats per token of the tokenizer
    bits_per_byte: float = float("nan")  # the same loss per byte of text: compares tokenizers
    unigram_loss: float = float("nan")  # held-out loss of the token-frequency baseline
    steps_per_s: float = float("nan")  # after the first (compiling) step of this process
    tokens_per_s: float = float("nan")
    mfu: float = float("nan")
    wall_s: float = float("nan")
    sample: str = ""
    goodput: dict = dataclasses.field(default_factory=dict)  # runtime/goodput.py's report


@dataclasses.dataclass
class Throughput:
    """Tokens/s and MFU over a span of steps. MFU never exceeds 100%: a span that beats the
    peak proves the peak low. A measured peak (`remeasure`) is measured again, once a run; a
    rate above even that becomes the peak, with a warning."""
    tokens_per_step: int
    flops_per_token: float
    peak_flops: float  # summed over all devices
    remeasure: Callable[[], float] | None = None  # () -> a fresh all-device peak; None: published
    _remeasured: bool = dataclasses.field(default=False, init=False, repr=False)
    _warned: bool = dataclasses.field(default=False, init=False, repr=False)
    _measuring_s: float = dataclasses.field(default=0.0, init=False, repr=False)

    def clock(self) -> float:
        """The time marks of rates: seconds, less those spent measuring the peak again."""
        return time.perf_counter() - self._measuring_s

    def rates(self, steps: int, seconds: float) -> dict[str, float]:
        tokens_per_s = steps * self.tokens_per_step / max(seconds, 1e-9)
        achieved = tokens_per_s * self.flops_per_token
        if achieved > self.peak_flops:
            self._raise_peak(achieved)
        return {"tokens_per_s": tokens_per_s, "mfu": achieved / self.peak_flops}

    def _raise_peak(self, achieved: float) -> None:
        if self.remeasure and not self._remeasured:  # a ~1 s benchmark between two steps, once
            jax.block_until_ready(jax.live_arrays())  # the step in flight must not share the cores
            self._remeasured, low, started = True, self.peak_flops, time.perf_counter()
            self.peak_flops = max(low, self.remeasure())
            self._measuring_s += time.perf_counter() - started
            logger.info("%.3g FLOP/s is above the peak of %.3g: measured again, %.3g FLOP/s",
                        achieved, low, self.peak_flops)
        if achieved > self.peak_flops:
            if not self._warned:
                low = "the measured peak" if self.remeasure else "hardware.peak_flops_per_device"
                logger.warning("%.3g FLOP/s is above the peak of %.3g FLOP/s: %s is low; MFU is "
                               "against the rate achieved", achieved, self.peak_flops, low)
            self._warned, self.peak_flops = True, achieved


@dataclasses.dataclass(frozen=True)
class Start:
    """Where a run without a checkpoint of its own takes its first state from (conf/init)."""
    source: str  # for the log, e.g. "Hugging Face weights in /ckpt/x"
    make: Callable[[], Any]  # () -> TrainState at step 0


def train(program: Program, *, loader: Loader, trainer: TrainerConfig,
          checkpoint: CheckpointConfig, throughput: Throughput, run_dir: Path,
          sinks: LoggerConfig | None = None, config_record: dict | None = None,
          on_start: Callable[[], None] | None = None, initial: Start | None = None,
          preemption: Preemption | None = None) -> RunSummary:
    """Train to `trainer.steps`, resuming from the newest intact checkpoint; without one,
    from `initial` (random initialisation if None): a run's own checkpoint always wins.

    `sinks`: where metrics go (conf/logger; None: its defaults). `config_record` (the resolved
    config) is saved in every checkpoint and given to W&B and MLflow. `on_start` runs once
    the run is sure to go on (checkpoints verified and restored, nothing refused), before the
    run directory's metrics are touched: the place to write records a refused run must not.
    With several processes, all train and checkpoint together; only process 0 writes records
    (`on_start`, metrics, progress, summary.json). `preemption`: the caller's, already
    installed (a Ctrl-C before the first step then stops there); None installs one for the loop.
    """
    primary = jax.process_index() == 0
    started = time.perf_counter()
    checkpointer = Checkpointer(RunDir(run_dir).checkpoints, checkpoint, record=config_record)
    try:
        newest = checkpointer.newest_intact()
        if (newest or 0) >= trainer.steps:
            logger.info("the run is already complete (checkpoint at step %d)", newest)
            return RunSummary(status=RunStatus.ALREADY_COMPLETE, steps=newest,
                              resumed_from=newest, skipped_steps=0)
        target = abstract_state(program.init_state, program.state_shardings)
        restored = checkpointer.restore(newest, target) if newest is not None else None
        if on_start and primary:
            on_start()
        start = restored.step if restored else 0
        skipped = restored.meta.get("skipped_steps", 0) if restored else 0
        if restored:
            if restored.data_state is None:
                raise RunRefused(f"checkpoint {restored.step} holds no data-loader position (written "
                                 "by an older hydralearn); set name=<new name> for a new run")
            loader.set_state(restored.data_state)
            logger.info("resuming from step %d%s", start, f" (the run's own checkpoint wins: "
                        f"{initial.source} not used)" if initial else "")
        elif initial:
            logger.info("starting from %s", initial.source)
        goodput = Goodput(RunDir(run_dir).goodput, start_step=start, started=started, primary=primary)
        log = MetricsLog(run_dir, total_steps=trainer.steps, initial_step=start, sinks=sinks,
                         name=program.config.name, run_config=config_record,
                         primary=primary)
        profiler = Profiler(trainer.profile, run_dir=run_dir)
        try:
            loop = _Loop(program, loader=loader, trainer=trainer, checkpoint=checkpoint,
                         checkpointer=checkpointer, throughput=throughput, skipped=skipped, log=log,
                         profiler=profiler, goodput=goodput)
            state = restored.state if restored else (initial.make() if initial else program.init_state())
            installed = preemption is not None
            preemption = preemption or Preemption(multi_process=jax.process_count() > 1)
            with contextlib.nullcontext() if installed else preemption, \
                    Watchdog(timeout_s=trainer.watchdog_s) as watchdog:
                preemption.raise_if_interrupted()  # compiled and restored: nothing to save yet
                state, status = loop.run(state, start=start, preemption=preemption, watchdog=watchdog)
        finally:
            profiler.stop()
            log.close()
            goodput.write()
    finally:
        checkpointer.close()  # waits for writes in flight: a started checkpoint is completed
        loader.close()
    summary = loop.summary(state, status=status, start=start, wall_s=time.perf_counter() - started)
    if status is RunStatus.COMPLETED and primary:
        RunDir(run_dir).summary.write_text(
            json.dumps(dataclasses.asdict(summary), indent=2, default=lambda s: s.value))
    return summary


class _Loop:
    def __init__(self, program: Program, *, loader: Loader, trainer: TrainerConfig,
                 checkpoint: CheckpointConfig, checkpointer: Checkpointer,
                 throughput: Throughput, skipped: int, log: MetricsLog, profiler: Profiler,
                 goodput: Goodput):
        self.program, self.loader, self.trainer, self.goodput = program, loader, trainer, goodput
        self.checkpoint, self.checkpointer, self.throughput = checkpoint, checkpointer, throughput
        self.skipped, self.log, self.profiler = skipped, log, profiler
        self.heldout = loader.heldout(trainer.eval_batches)
        self.evals = [(self.put(b), float(b.mask.sum())) for b in self.heldout]
        self.data_stats: list[dict[str, float]] = []  # per step since the last record
        self.pending = None  # (step, device metrics): fetched while the next step runs
        self.last: dict[str, float] = {}  # the newest fetched step's metrics
        self.first = self.window = self.newest = None  # (time, step) marks for rates
        self.final: dict[str, float] = {}

    def run(self, state, *, start: int, preemption: Preemption, watchdog: Watchdog):
        goodput = self.goodput
        goodput.add("startup", goodput.wall_s())
        for step in range(start, self.trainer.steps):
            with goodput.span("data_wait"):
                batch = next(self.loader)
            # Steps after the first are timed as what no other bucket took (Goodput.attempt).
            compiling = goodput.span("compile") if step == start else contextlib.nullcontext()
            with self.profiler.step(step + 1), compiling:
                state, metrics = self.program.train_step(state, *self.put(batch))
                if step == start:  # the attempt's first step is its compilation: wait for it
                    jax.block_until_ready(metrics)
            self.profiler.finished(step + 1, state)
            self.data_stats.append(self.loader.stats(batch))
            self._flush()
            watchdog.beat()
            self.pending = (step, metrics)
            done = step + 1
            evaluated = {}
            if self.trainer.eval_every and done % self.trainer.eval_every == 0 and done < self.trainer.steps:
                with goodput.span("eval"):
                    evaluated = {"eval_loss": self.evaluate(state)}
                self.log.write(done, evaluated)
            if preemption.stop_after(done - start) and done < self.trainer.steps:
                self._save(done, state, evaluated)
                with goodput.span("checkpoint"):
                    self.checkpointer.wait()  # the save is what the stop was for: see it committed
                logger.warning("stopped: checkpoint saved at step %d; run the same command to resume", done)
                return state, RunStatus.INTERRUPTED if preemption.interrupted else RunStatus.PREEMPTED
            if self.checkpoint.every_steps and done % self.checkpoint.every_steps == 0 \
                    and done < self.trainer.steps:  # the last step is saved after the final eval
                self._save(done, state, evaluated)
            watchdog.beat()
        self._flush()
        with goodput.span("eval"):
            self.final = {"eval_loss": self.evaluate(state), **self._overall_rates()}
        self.log.write(self.trainer.steps, self.final)
        self._save(self.trainer.steps, state, self.final)
        return state, RunStatus.COMPLETED

    def _save(self, step: int, state, evaluated: dict[str, float]) -> None:
        self._flush()  # with nonfinite=stop, a non-finite step raises here, before it is saved
        meta = {"step": step, "data_seed": self.program.config.data.seed,
                "seed": self.program.config.seed, "skipped_steps": self.skipped}
        values = {**self.last, **evaluated}
        name = self.checkpoint.best_metric
        metrics = {name: values[name]} if self.checkpoint.keep_best and name in values else None
        if self.checkpointer.save(step, state, meta=meta, data_state=self.loader.get_state(),
                                  metrics=metrics):
            self.goodput.add("checkpoint", self.checkpointer.blocking_s)
            self.goodput.write()  # the reach at each save, for the accounting of a later resume
            self.log.write(step, {"checkpoint_blocking_s": self.checkpointer.blocking_s})

    def _flush(self) -> None:
        """Fetch the pending step's metrics; the clock starts after the first step (compile)."""
        if self.pending is None:
            return
        step, metrics = self.pending
        self.pending = None
        values = {k: float(v) for k, v in jax.device_get(metrics).items()}
        self._check_finite(step + 1, values)
        values["skipped_steps"] = self.skipped
        now = self.throughput.clock()
        self.log.show(values)
        self.log.advance()
        if self.first is None:
            self.first = self.window = (now, step)
            self.log.write(step + 1, values)
        elif (step + 1) % self.trainer.log_every == 0 or step + 1 == self.trainer.steps or values["nonfinite"]:
            values |= self.throughput.rates(step - self.window[1], now - self.window[0])
            values |= self._data_window()
            values["goodput"] = self.goodput.report()["goodput"]
            self.log.write(step + 1, values)
            self.window = (now, step)
        self.last, self.newest = values, (now, step)
        self.goodput.steps(step + 1, productive_steps=step - self.first[1])

    def put(self, batch: HostBatch) -> tuple:
        """(inputs, targets[, segments]) as global arrays from this process's rows."""
        def put(x):
            return jax.make_array_from_process_local_data(self.program.batch_sharding, x)
        arrays = (put(batch.inputs), put(batch.targets))
        if batch.segment_ids is None:
            return arrays
        return (*arrays, {"positions": put(batch.positions), "segment_ids": put(batch.segment_ids)})

    def _data_window(self) -> dict[str, float]:
        """The loader's statistics averaged over the steps since the last record."""
        window, self.data_stats = self.data_stats, []
        out = {k: float(np.mean([s[k] for s in window])) for k in (window[0] if window else {})}
        return out | ({"bad_records": self.loader.bad_records} if self.loader.bad_records else {})

    def _overall_rates(self) -> dict[str, float]:
        steps = self.newest[1] - self.first[1]
        return self.throughput.rates(steps, self.newest[0] - self.first[0]) if steps else {}

    def _check_finite(self, step: int, values: dict[str, float]) -> None:
        if not values.get("nonfinite"):
            return
        if self.trainer.nonfinite is NonFinite.skip:
            self.skipped += 1
            logger.warning("step %d: non-finite loss or gradient (loss=%s, grad_norm=%s); update "
                           "skipped (%d so far)", step, values["loss"], values["grad_norm"], self.skipped)
            return
        self.log.write(step, values)
        saved = self.checkpointer.latest_step()
        where = ("no checkpoint was saved yet (a rerun starts from step 0)" if saved is None
                 else f"the newest checkpoint is at step {saved}")
        raise NonFiniteLoss(
            f"step {step}: the loss ({values['loss']}) or gradient norm ({values['grad_norm']}) is "
            f"not finite; {where}. Lower "
            "optim.lr or raise schedule.warmup_steps, or set trainer.nonfinite=skip to drop such steps")

    def evaluate(self, state) -> float:
        """Mean loss per held-out target token (padding excluded)."""
        losses = [(float(self.program.eval_step(state.params, *batch)), n) for batch, n in self.evals]
        return sum(loss * n for loss, n in losses) / sum(n for _, n in losses)

    def summary(self, state, *, status: RunStatus, start: int, wall_s: float) -> RunSummary:
        base = dict(status=status, steps=int(jax.device_get(state.step)), resumed_from=start,
                    skipped_steps=self.skipped, train_loss=self.last.get("loss", float("nan")))
        if status is not RunStatus.COMPLETED:
            return RunSummary(**base, wall_s=wall_s, goodput=self.goodput.report())
        rates = {k: self.final[k] for k in ("tokens_per_s", "mfu") if k in self.final}
        eval_loss = self.final["eval_loss"]
        with self.goodput.span("sample"):
            sample = _sample(self.program, state, self.loader, self.trainer)
        self.goodput.write()
        return RunSummary(
            **base, **rates, eval_loss=eval_loss,
            bits_per_byte=eval_loss / math.log(2) * self.loader.tokens_per_byte(),
            unigram_loss=self.loader.unigram_loss(self.heldout),
            steps_per_s=rates.get("tokens_per_s", float("nan")) / self.throughput.tokens_per_step,
            wall_s=wall_s, sample=sample, goodput=self.goodput.report())


def _sample(program: Program, state, loader: Loader, trainer: TrainerConfig) -> str:
    """The prompt and its completion, generated as hydralearn-generate does, within seq_len."""
    if not trainer.sample_tokens or jax.process_count() > 1:  # the sampler runs on one device
        return ""
    codec = codec_of(loader.tokenizer)
    if program.config.data.source is Source.chat:  # the prompt as a user's message, answered
        codec = chat_codec(program.config)
    prompt = trainer.sample_prompt
    num_tokens = min(trainer.sample_tokens, program.config.data.seq_len - len(codec.encode(prompt)))
    generator = Generator(program.config, state.params, mesh=program.mesh, graphdef=program.graphdef)
    return prompt + complete(generator, codec, [prompt], max_new_tokens=num_tokens, stop=getattr(codec, "stop", ()),
                             sampling=Sampling(temperature=trainer.sample_temperature))[0]
