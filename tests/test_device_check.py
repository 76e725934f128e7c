"""scripts/device_check.sh on a machine without an accelerator: one line, exit 0, nothing
written; with HYDRALEARN_DEVICE_CHECK_ON_CPU=1 its whole path (test discovery, scripts/bench_device.py's
comparison on a tiny model, the ledger row) into a copy of docs/performance.md."""

import datetime
import os
import re
import shutil
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DOCS_LEDGER = REPO / "docs" / "performance.md"


def device_check(**env: str) -> subprocess.CompletedProcess:
    # As a user runs it: JAX's own device count, not the 8 simulated CPUs of tests/conftest.py.
    base = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    return subprocess.run(["bash", str(REPO / "scripts" / "device_check.sh")], env=base | env,
                          capture_output=True, text=True, timeout=300)


def ledger_rows(text: str) -> tuple[list[str], list[list[str]]]:
    """The ledger table's header cells and its rows' cells."""
    table = text[text.index("| date (UTC) |"):].split("\n\n")[0].splitlines()
    cells = [[c.strip() for c in line.strip().strip("|").split("|")] for line in table]
    return cells[0], cells[2:]


def test_without_an_accelerator_it_says_so_in_one_line_and_exits_0():
    before = DOCS_LEDGER.read_bytes()
    result = device_check()
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("device_check: no accelerator: JAX found only 1 cpu device(s) (cpu)")
    assert result.stdout.count("\n") == 1
    assert DOCS_LEDGER.read_bytes() == before


def test_the_cpu_escape_hatch_runs_the_whole_path_into_a_ledger_copy(tmp_path):
    ledger = tmp_path / "performance.md"
    shutil.copy(DOCS_LEDGER, ledger)
    before = DOCS_LEDGER.read_bytes()
    result = device_check(HYDRALEARN_DEVICE_CHECK_ON_CPU="1", HYDRALEARN_DEVICE_CHECK_LEDGER=str(ledger))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "accelerator-only tests: tests/compose/test_kernels.py::" in result.stdout
    assert "SKIPPED" in result.stdout and "ratio:" in result.stdout
    assert DOCS_LEDGER.read_bytes() == before
    header, rows = ledger_rows(ledger.read_text())
    assert "not yet measured on an accelerator" not in ledger.read_text()
    (row,) = rows
    assert len(row) == len(header)
    datetime.datetime.strptime(row[0], "%Y-%m-%d %H:%M")
    assert row[1] == "cpu (cpu), 1 of 1" and re.fullmatch(r"[0-9a-f]{7,}(\+dirty)?", row[2])
    assert row[3:7] == ["llama_tiny", "float32", "xla, none", "32 x 2"]
    for side in (row[7:10], row[10:13]):  # hydralearn, plain JAX: ms/step, tokens/s, MFU
        assert float(side[0]) > 0 and float(side[1].replace(",", "")) > 0
        assert 0 < float(side[2].rstrip("%")) / 100 < 1
    assert float(row[13]) > 0
