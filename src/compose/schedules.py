"""The learning-rate schedules of conf/schedule (schemas: config/schema/schedule.py), each a
few lines of optax. `step` is the optimizer's update count, from 0; `peak` is optim.lr."""

import optax


def cosine(config, *, peak: float, total_steps: int) -> optax.Schedule:
    warmup = _warmup_steps(config, total_steps)
    return optax.warmup_cosine_decay_schedule(
        init_value=0.0, peak_value=peak, warmup_steps=warmup,
        decay_steps=max(total_steps, warmup + 1), end_value=peak * config.min_lr_ratio)


def linear(config, *, peak: float, total_steps: int) -> optax.Schedule:
    warmup = _warmup_steps(config, total_steps)
    decay = optax.linear_schedule(peak, peak * config.min_lr_ratio, max(total_steps - warmup, 1))
    return _after_warmup(decay, peak=peak, warmup=warmup)


def constant(config, *, peak: float, total_steps: int) -> optax.Schedule:
    return _after_warmup(optax.constant_schedule(peak), peak=peak,
                         warmup=_warmup_steps(config, total_steps))


def wsd(config, *, peak: float, total_steps: int) -> optax.Schedule:
    """Warmup, stable at `peak`, then linear decay over the last decay_fraction of the steps."""
    warmup = _warmup_steps(config, total_steps)
    decay_start = max(total_steps - max(round(config.decay_fraction * total_steps), 1), warmup)
    stable_then_decay = optax.join_schedules(
        [optax.constant_schedule(peak),
         optax.linear_schedule(peak, peak * config.min_lr_ratio, max(total_steps - decay_start, 1))],
        [decay_start - warmup])
    return _after_warmup(stable_then_decay, peak=peak, warmup=warmup)


def _warmup_steps(config, total_steps: int) -> int:
    """A warmup longer than the run ends one step before it."""
    return min(config.warmup_steps, max(total_steps - 1, 0))


def _after_warmup(schedule: optax.Schedule, *, peak: float, warmup: int) -> optax.Schedule:
    if not warmup:  # optax warns about a zero-step linear schedule
        return schedule
    return optax.join_schedules([optax.linear_schedule(0.0, peak, warmup), schedule], [warmup])
