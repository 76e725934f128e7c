"""The compiled-memory ledger (tests/golden/*.compiled.json): one entry per experiment on a GPU
or TPU profile, the planner within 15% of XLA's compiled peak on each, every one fitting its
device, and entries that a fresh compile reproduces."""

import pytest

from hydralearn.review import golden, ledger
from hydralearn.review.plan import load_resolved, make_plan

NAMES = ledger.experiments()
GIB = 2**30


def test_every_accelerator_experiment_has_an_entry_and_no_other():
    on_disk = {p.name.removesuffix(ledger.SUFFIX) for p in golden.GOLDEN_DIR.glob(f"*{ledger.SUFFIX}")}
    assert on_disk == set(NAMES), f"refresh the ledger: {ledger.REFRESH_COMMAND}"
    assert len(NAMES) >= 7  # the H100, H200 and TPU v5p/v6e experiments


@pytest.mark.parametrize("name", NAMES)
def test_the_planner_is_within_15_percent_of_the_compiled_peak(name):
    entry = ledger.read(name)
    config = load_resolved([f"+experiment={name}"])
    plan = make_plan(config)
    assert (entry.estimate_bytes, entry.flops_per_token) == (plan.memory.total, plan.flops_per_token), \
        f"the planner's estimate changed; refresh the ledger: {ledger.REFRESH_COMMAND}"
    assert 0.85 <= entry.estimate_over_peak <= 1.15, (
        f"{name}: estimate {entry.estimate_bytes / GIB:.1f} GiB vs compiled peak "
        f"{entry.peak_bytes / GIB:.1f} GiB")
    assert entry.peak_bytes < config.hardware.device_memory_bytes, f"{name} does not fit"


def _fresh_equals_ledger(name):
    fresh, _ = ledger.compile_entry(name)
    assert fresh == ledger.read(name), f"{name} compiles differently now; refresh: {ledger.REFRESH_COMMAND}"


def test_a_fresh_gpu_compile_reproduces_its_entry():
    _fresh_equals_ledger("llama3_2_1b_h200_dp")


@pytest.mark.slow
@pytest.mark.parametrize("name", ["llama3_8b_tpu_v5p_yarn", "mixtral_8x7b_h100_16x8"])
def test_a_fresh_compile_reproduces_its_entry(name):
    _fresh_equals_ledger(name)
