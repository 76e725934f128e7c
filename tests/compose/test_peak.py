"""MFU that cannot lie: the CPU's measured peak (compose/peak.py) is cached only when the
machine was quiet and only ever rises; the trainer's Throughput measures again when a run beats
it and never reports above 100%; the one FLOPs-per-token count (compose/build.py)."""

import json
import logging
import math
import time
from collections.abc import Callable

import pytest

from hydralearn.compose import peak
from hydralearn.compose.build import flops_per_token
from hydralearn.runtime.trainer import Throughput

SIZE = 2048
FLOPS = 2.0 * SIZE**3  # one trial's matmul


@pytest.fixture(autouse=True)
def cache_home(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setattr(peak, "usable_cores", lambda: 2)
    return tmp_path


def trials(monkeypatch, *spans: tuple[float, float]):
    """Every measurement from now on times these (seconds, CPU seconds) trials."""
    made = [peak.Trial(seconds=s, cpu_seconds=c) for s, c in spans]
    monkeypatch.setattr(peak, "time_trials", lambda *, size, trials: made)


def no_trials(monkeypatch):
    def refuse(*, size, trials):
        raise AssertionError("measured although the cache holds this machine's peak")
    monkeypatch.setattr(peak, "time_trials", refuse)


def test_a_loaded_measurement_is_used_but_not_cached(monkeypatch, caplog):
    # Bursty load: spread-out trials, and the best one ran on half the cores' time.
    trials(monkeypatch, (0.5, 0.6), (0.2, 0.2), (0.9, 0.9), (0.3, 0.35))
    with caplog.at_level(logging.WARNING):
        assert peak.measured_cpu_peak() == pytest.approx(FLOPS / 0.2)
    assert not peak.cache_path().exists()
    assert "busy" in caplog.text
    # A steady load: trials that agree, all on half the cores, are no better.
    trials(monkeypatch, (0.2, 0.2), (0.21, 0.21), (0.2, 0.2))
    assert peak.measured_cpu_peak() == pytest.approx(FLOPS / 0.2)
    assert not peak.cache_path().exists()


def test_a_quiet_measurement_is_cached_and_reused(monkeypatch):
    trials(monkeypatch, (0.12, 0.22), (0.1, 0.19), (0.11, 0.2))  # 95% of 2 cores at best
    assert peak.measured_cpu_peak() == pytest.approx(FLOPS / 0.1)
    cached = json.loads(peak.cache_path().read_text())
    assert cached == {"key": peak.machine_key(), "flops_per_s": pytest.approx(FLOPS / 0.1)}
    no_trials(monkeypatch)
    assert peak.measured_cpu_peak() == pytest.approx(FLOPS / 0.1)
    # Another machine's (or jax version's) entry is not this one's.
    peak.cache_path().write_text(json.dumps(cached | {"key": "another cpu"}))
    trials(monkeypatch, (0.2, 0.38))
    assert peak.measured_cpu_peak() == pytest.approx(FLOPS / 0.2)


def test_a_measurement_again_only_raises_the_cache(monkeypatch):
    trials(monkeypatch, (0.2, 0.38))
    peak.measured_cpu_peak()
    trials(monkeypatch, (0.4, 0.78))  # quiet, but slower than the cached figure
    assert peak.remeasured_cpu_peak() == pytest.approx(FLOPS / 0.2)
    trials(monkeypatch, (0.1, 0.1))  # faster, but busy: used, not cached
    assert peak.remeasured_cpu_peak() == pytest.approx(FLOPS / 0.1)
    assert peak.cached_cpu_peak() == pytest.approx(FLOPS / 0.2)
    trials(monkeypatch, (0.1, 0.19))
    assert peak.remeasured_cpu_peak() == pytest.approx(FLOPS / 0.1)
    assert peak.cached_cpu_peak() == pytest.approx(FLOPS / 0.1)


def test_a_real_measurement_is_a_plausible_figure():
    measured = peak.measure_matmul_peak(size=256, trials=2)
    assert 1e8 < measured.flops_per_s < 1e15 and isinstance(measured.quiet, bool)


def counting(value: float) -> tuple[list[float], Callable[[], float]]:
    """A stand-in measurement that gives `value` and records each call."""
    calls = []
    return calls, lambda: calls.append(value) or value


def test_a_rate_above_a_measured_peak_measures_again_once(caplog):
    calls, remeasure = counting(1500.0)
    throughput = Throughput(tokens_per_step=100, flops_per_token=10.0, peak_flops=1000.0,
                            remeasure=remeasure)
    assert throughput.rates(steps=1, seconds=2.0)["mfu"] == pytest.approx(0.5)  # no trigger
    assert calls == []
    with caplog.at_level(logging.INFO):
        rates = throughput.rates(steps=2, seconds=1.0)  # 2000 FLOP/s: above even 1500
    assert calls == [1500.0] and rates["mfu"] == 1.0 and rates["tokens_per_s"] == 200.0
    assert "the measured peak is low" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        assert throughput.rates(steps=3, seconds=1.0)["mfu"] == 1.0  # 3000: raised, silently
    assert calls == [1500.0] and caplog.text == ""
    assert throughput.rates(steps=1, seconds=1.0)["mfu"] == pytest.approx(1000 / 3000)


def test_a_measurement_again_that_suffices_warns_nothing(caplog):
    calls, remeasure = counting(4000.0)
    throughput = Throughput(tokens_per_step=100, flops_per_token=10.0, peak_flops=1000.0,
                            remeasure=remeasure)
    with caplog.at_level(logging.WARNING):
        assert throughput.rates(steps=2, seconds=1.0)["mfu"] == pytest.approx(0.5)
    assert calls == [4000.0] and caplog.text == ""


def test_the_measurement_is_off_the_clock_of_rates(monkeypatch):
    now = [100.0]
    monkeypatch.setattr(time, "perf_counter", lambda: now[0])

    def remeasure():  # a benchmark of 5 s
        now[0] += 5.0
        return 1e6
    throughput = Throughput(tokens_per_step=100, flops_per_token=10.0, peak_flops=1000.0,
                            remeasure=remeasure)
    throughput.rates(steps=2, seconds=1.0)
    assert throughput.clock() == 100.0 and now[0] == 105.0


def test_a_rate_above_a_published_peak_is_capped_with_a_warning(caplog):
    throughput = Throughput(tokens_per_step=100, flops_per_token=10.0, peak_flops=1000.0)
    with caplog.at_level(logging.WARNING):
        assert throughput.rates(steps=3, seconds=1.0)["mfu"] == 1.0
    assert "hardware.peak_flops_per_device is low" in caplog.text


def brute_force_mean_keys(seq_len: int, window: int | None) -> float:
    return sum(min(t + 1, window or seq_len) for t in range(seq_len)) / seq_len


@pytest.mark.parametrize("seq_len", [1, 2, 7, 32, 4096])
@pytest.mark.parametrize("window", [None, 1, 3, 32, 100, 10_000])
def test_attention_counts_the_keys_each_query_attends(seq_len, window):
    count = flops_per_token(matmul_params=1000, num_layers=3, attention_dim=64, seq_len=seq_len,
                            window=window)
    assert count == pytest.approx(6 * 1000 + 12 * 3 * 64 * brute_force_mean_keys(seq_len, window))


def test_causal_attention_is_about_half_the_square():
    count = flops_per_token(matmul_params=0, num_layers=2, attention_dim=128, seq_len=4096)
    assert count == pytest.approx(12 * 2 * 128 * 4097 / 2)  # (1 + ... + T) / T keys a query
    assert math.isclose(count / (12 * 2 * 128 * 4096), 0.5, rel_tol=1e-3)
