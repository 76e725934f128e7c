"""The training loop: data -> jitted step -> metrics, periodic eval, end-of-run sample."""

import dataclasses
import json
import time
from pathlib import Path

import jax
import numpy as np

from hydralearn.compose.build import Program
from hydralearn.data import tokenizer
from hydralearn.data.corpus import Corpus, unigram_cross_entropy
from hydralearn.data.pipeline import DataConfig, heldout_batches, train_batch
from hydralearn.runtime.config import TrainerConfig
from hydralearn.runtime.metrics import MetricsLog
from hydralearn.runtime.sample import generate


@dataclasses.dataclass(frozen=True)
class RunSummary:
    steps: int
    train_loss: float  # last step's training loss
    eval_loss: float  # held-out loss at the end
    unigram_loss: float  # held-out loss of the byte-frequency baseline
    steps_per_s: float  # after the first (compiling) step
    tokens_per_s: float
    mfu: float
    wall_s: float
    sample: str


@dataclasses.dataclass(frozen=True)
class Throughput:
    tokens_per_step: int
    flops_per_token: float
    peak_flops: float  # summed over all devices

    def rates(self, steps: int, seconds: float) -> dict[str, float]:
        tokens_per_s = steps * self.tokens_per_step / max(seconds, 1e-9)
        return {"tokens_per_s": tokens_per_s,
                "mfu": tokens_per_s * self.flops_per_token / self.peak_flops}


def train(program: Program, *, data: DataConfig, corpus: Corpus, trainer: TrainerConfig,
          throughput: Throughput, run_dir: Path) -> RunSummary:
    started = time.perf_counter()
    put = lambda x: jax.device_put(x, program.batch_sharding)  # noqa: E731
    evals = [(put(b.inputs), put(b.targets)) for b in heldout_batches(data, corpus, trainer.eval_batches)]
    state = program.init_state()
    log = MetricsLog(run_dir, total_steps=trainer.steps)
    pending, timer_start, window_start, last = None, None, None, {}
    for step in range(trainer.steps):
        batch = train_batch(data, corpus, step)
        state, metrics = program.train_step(state, put(batch.inputs), put(batch.targets))
        if pending is not None:  # fetch the previous step while this one runs
            last, timer_start, window_start = _record(log, trainer, throughput, *pending,
                                                      timer_start, window_start)
        pending = (step, metrics)
        if trainer.eval_every and (step + 1) % trainer.eval_every == 0 and step + 1 < trainer.steps:
            log.write(step + 1, {"eval_loss": _evaluate(program, state, evals)})
    last, timer_start, _ = _record(log, trainer, throughput, *pending, timer_start, window_start)
    elapsed = time.perf_counter() - timer_start if timer_start else float("nan")
    eval_loss = _evaluate(program, state, evals)
    rates = throughput.rates(trainer.steps - 1, elapsed)
    log.write(trainer.steps, {"eval_loss": eval_loss, **rates})
    log.close()
    sample = _sample(program, state, data, trainer)
    summary = RunSummary(
        steps=trainer.steps, train_loss=last["loss"], eval_loss=eval_loss,
        unigram_loss=unigram_cross_entropy(corpus.train, corpus.heldout),
        steps_per_s=(trainer.steps - 1) / elapsed, wall_s=time.perf_counter() - started,
        sample=sample, **rates)
    (Path(run_dir) / "summary.json").write_text(json.dumps(dataclasses.asdict(summary), indent=2))
    return summary


def _record(log, trainer, throughput, step, metrics, timer_start, window_start):
    """Fetch one step's metrics; the clock starts after step 0 so compile time is excluded."""
    values = {k: float(v) for k, v in jax.device_get(metrics).items()}
    now = time.perf_counter()
    log.show(values)
    log.advance()
    if step == 0:
        log.write(step + 1, values)
        return values, now, (now, step)
    if (step + 1) % trainer.log_every == 0 or step + 1 == trainer.steps:
        values |= throughput.rates(step - window_start[1], now - window_start[0])
        log.write(step + 1, values)
        window_start = (now, step)
    return values, timer_start, window_start


def _evaluate(program: Program, state, evals) -> float:
    return float(np.mean([float(program.eval_step(state.params, x, y)) for x, y in evals]))


def _sample(program: Program, state, data: DataConfig, trainer: TrainerConfig) -> str:
    if not trainer.sample_tokens:
        return ""
    prompt = tokenizer.encode(trainer.sample_prompt)
    num_tokens = min(trainer.sample_tokens, data.seq_len - len(prompt))
    tokens = generate(program.apply, state.params, prompt, num_tokens=num_tokens,
                      buffer_len=data.seq_len, temperature=trainer.sample_temperature, seed=0)
    return tokenizer.decode(np.asarray(tokens))
