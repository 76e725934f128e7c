"""The goodput ledger (runtime/goodput.py) against hand-computed accounts of attempts that
stopped past their last checkpoint and resumed; its real-process use is checked in
tests/runtime/test_resume.py (a run killed with -9 and resumed)."""

import json
import time

import pytest

from hydralearn.runtime.goodput import BUCKETS, Goodput


def attempt(path, *, start, reached, buckets, wall):
    """An attempt recorded as a process would leave it (started `wall` seconds ago)."""
    ledger = Goodput(path, start_step=start, started=time.perf_counter() - wall)
    for bucket, seconds in buckets.items():
        ledger.add(bucket, seconds)
    ledger.steps(reached, productive_steps=reached - start - 1)  # the first step compiled
    ledger.write()
    return ledger


def test_a_fresh_run_puts_all_its_wall_time_in_buckets(tmp_path):
    ledger = attempt(tmp_path / "goodput.json", start=0, reached=11,
                     buckets={"startup": 1.0, "compile": 2.0, "eval": 0.5}, wall=10.0)
    report = ledger.report()
    assert report["attempts"] == 1 and report["steps_recomputed"] == 0
    assert report["productive_s"] == pytest.approx(10.0 - 3.5, abs=0.05)
    assert sum(report[f"{b}_s"] for b in BUCKETS) == pytest.approx(report["wall_s_all_attempts"], abs=1e-3)
    assert report["goodput"] == pytest.approx(6.5 / 10.0, abs=0.01)


def test_steps_past_the_checkpoint_count_as_lost_once(tmp_path):
    path = tmp_path / "goodput.json"
    # Attempt 1: steps 0 -> 21 in 10 s (1 s startup, 2 s compile: 7 s for 20 timed steps);
    # killed there, its newest checkpoint at step 10.
    attempt(path, start=0, reached=21, buckets={"startup": 1.0, "compile": 2.0}, wall=10.0)
    first_step_s = 7.0 / 20
    # Attempt 2 resumes at 10: steps 10..21 are computed again (11 steps).
    second = attempt(path, start=10, reached=15, buckets={"startup": 1.0, "compile": 2.0}, wall=4.0)
    report = second.report()
    assert report["steps_recomputed"] == 11
    assert report["lost_to_restarts_s"] == pytest.approx(11 * first_step_s, rel=0.02)
    # Attempt 3 resumes at 12 (attempt 2 checkpointed there): attempt 2's steps 12..15 are
    # lost; attempt 1's were counted already.
    third = Goodput(path, start_step=12, started=time.perf_counter())
    second_step_s = 1.0 / 4
    assert third.lost_steps == 3
    assert third.lost_s == pytest.approx(3 * second_step_s, rel=0.05)
    report = third.report()
    assert report["attempts"] == 3 and report["steps_recomputed"] == 11 + 3
    productive = (7.0 + 1.0) - 11 * first_step_s - 3 * second_step_s
    assert report["goodput"] == pytest.approx(productive / (10.0 + 4.0), abs=0.01)
    # A resume from before an earlier attempt's start (attempt 3 wrote no record) loses
    # attempt 1's kept steps 5..10 and all of attempt 2's, 10..15.
    fourth = Goodput(path, start_step=5, started=time.perf_counter())
    assert fourth.lost_steps == (10 - 5) + (15 - 10)


def test_an_unreadable_record_counts_nothing_earlier(tmp_path):
    path = tmp_path / "goodput.json"
    path.write_text("{not json")
    ledger = Goodput(path, start_step=4, started=time.perf_counter())
    assert ledger.report()["attempts"] == 1 and ledger.lost_steps == 0
    ledger.write()
    assert json.loads(path.read_text())["attempts"][0]["start_step"] == 4
