"""The uninterrupted reference run, shared by every module that compares a resumed run with it."""

from pathlib import Path

import pytest

from tests.runtime.processes import SHORT, finish, launch


@pytest.fixture(scope="session")
def baseline_started(tmp_path_factory):
    """Started early so its cost overlaps the interrupted runs'."""
    run_dir = tmp_path_factory.mktemp("baseline")
    return run_dir, launch(run_dir, *SHORT)


@pytest.fixture(scope="session")
def baseline(baseline_started) -> Path:
    run_dir, process = baseline_started
    result = finish(process)
    assert result.returncode == 0, result.stderr[-3000:]
    return run_dir
