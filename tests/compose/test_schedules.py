"""Every schedule option against its closed-form formula at chosen steps."""

import math

import numpy as np
import pytest

from hydralearn.config import compose as compose_config
from hydralearn.compose.optim import build_optimizer

PEAK, STEPS, WARMUP, END = 0.01, 100, 10, 0.001  # END = PEAK * min_lr_ratio (0.1)
DECAY = 20  # wsd: decay_fraction 0.2 of 100 steps


def warmup(t):
    return PEAK * t / WARMUP


FORMULAS = {
    "cosine": lambda t: warmup(t) if t < WARMUP else
    END + (PEAK - END) * 0.5 * (1 + math.cos(math.pi * (t - WARMUP) / (STEPS - WARMUP))),
    "linear": lambda t: warmup(t) if t < WARMUP else PEAK + (END - PEAK) * (t - WARMUP) / (STEPS - WARMUP),
    "constant": lambda t: warmup(t) if t < WARMUP else PEAK,
    "wsd": lambda t: warmup(t) if t < WARMUP else PEAK if t < STEPS - DECAY else
    PEAK + (END - PEAK) * (t - (STEPS - DECAY)) / DECAY,
}


def schedule_of(*overrides: str):
    config = compose_config.load([f"optim.lr={PEAK}", f"trainer.steps={STEPS}", *overrides])
    return build_optimizer(config.optim, schedule=config.schedule, total_steps=STEPS).schedule


@pytest.mark.parametrize("name", sorted(FORMULAS))
def test_schedule_matches_its_formula(name):
    schedule = schedule_of(f"schedule={name}", f"schedule.warmup_steps={WARMUP}")
    for t in (0, 3, 9, 10, 11, 45, 79, 80, 81, 90, 99, 100):
        np.testing.assert_allclose(float(schedule(t)), FORMULAS[name](t), rtol=1e-5, atol=1e-9,
                                   err_msg=f"{name} at step {t}")


def test_wsd_decay_fraction_and_no_warmup():
    schedule = schedule_of("schedule=wsd", "schedule.warmup_steps=0", "schedule.decay_fraction=0.5",
                           "schedule.min_lr_ratio=0")
    for t, expected in ((0, PEAK), (49, PEAK), (50, PEAK), (75, PEAK / 2), (100, 0.0)):
        np.testing.assert_allclose(float(schedule(t)), expected, rtol=1e-5, atol=1e-9)


def test_warmup_longer_than_the_run_ends_one_step_before_it():
    schedule = schedule_of("schedule=constant", f"schedule.warmup_steps={10 * STEPS}")
    np.testing.assert_allclose(float(schedule(STEPS - 1)), PEAK, rtol=1e-6)
    np.testing.assert_allclose(float(schedule((STEPS - 1) // 2)), PEAK * ((STEPS - 1) // 2) / (STEPS - 1), rtol=1e-6)
