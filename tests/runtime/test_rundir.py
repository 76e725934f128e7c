"""Run-directory names, storage checks and the lock, on real files and descriptors."""

import errno
import json
import os
import shutil
import socket
import subprocess
import sys

import pytest

from hydralearn.config.run_dir import RunDir, name_errors
from hydralearn.runtime import lock, rundir, storage
from hydralearn.runtime.errors import StorageError


@pytest.mark.parametrize("name, problem", [
    ("llama_tiny", None), ("run.v2", None), ("a..b", None),
    ("", "is empty"), ("  ", "is empty"), ("../x", "path separator"), ("a/b", "path separator"),
    ("a\\b", "path separator"), ("..", "not a plain name"), (".", "not a plain name"),
    ("a\nb", "control character"),
])
def test_name_must_be_one_plain_path_component(name, problem):
    errors = name_errors(name)
    assert (errors == []) if problem is None else (len(errors) == 1 and problem in errors[0])


def test_within_follows_dot_dot_and_symlinks(tmp_path):
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "link").symlink_to(tmp_path)
    assert rundir.within(tmp_path / "runs", tmp_path / "runs" / "a")
    assert not rundir.within(tmp_path / "runs", tmp_path / "runs" / ".." / "x")
    assert not rundir.within(tmp_path / "runs", tmp_path / "runs" / "link" / "x")


def test_second_holder_is_refused_naming_the_first(tmp_path):
    with lock.acquire(tmp_path):
        record = json.loads(RunDir(tmp_path).lock.read_text())
        assert record["pid"] == os.getpid() and record["host"] == socket.gethostname()
        # Another open file description: flock refuses it even within this process.
        with pytest.raises(lock.RunDirLocked, match=rf"is in use by pid {os.getpid()} on host "):
            lock.acquire(tmp_path)
    with lock.acquire(tmp_path):  # released: taken again
        pass


def test_lock_dies_with_its_holder(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from hydralearn.runtime.lock import acquire; "
        f"acquire({str(tmp_path)!r}); print('held', flush=True); time.sleep(60)")],
        stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline() == "held\n"
    with pytest.raises(lock.RunDirLocked, match=f"pid {holder.pid}"):
        lock.acquire(tmp_path)
    holder.kill()
    holder.wait()
    with lock.acquire(tmp_path):  # no cleanup needed after kill -9
        assert json.loads(RunDir(tmp_path).lock.read_text())["pid"] == os.getpid()


def test_a_holder_record_of_an_exited_pid_says_a_child_holds_it():
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                              capture_output=True, text=True)
    record = {"pid": int(finished.stdout), "host": socket.gethostname(), "since": "t"}
    assert "has exited: a process it forked still holds the lock" in lock.describe_holder(record)
    assert lock.describe_holder({}) == "another process"


def test_other_processes_of_a_multi_host_job_hold_nothing(tmp_path):
    with lock.acquire(tmp_path, primary=False):
        assert not RunDir(tmp_path).lock.exists()


def test_a_refused_claim_removes_only_a_directory_it_made(tmp_path):
    made = rundir.claim(tmp_path / "new")
    assert made.created and RunDir(made.path).lock.exists()
    made.abandon()
    assert not (tmp_path / "new").exists()
    made.release()  # after abandon: nothing left to do
    (tmp_path / "old").mkdir()
    kept = rundir.claim(tmp_path / "old")
    kept.abandon()
    assert (tmp_path / "old").is_dir()
    unused = rundir.claim(tmp_path / "unused")  # made, then never written by the run
    with pytest.raises(lock.RunDirLocked, match=f"pid {os.getpid()} "):  # held by this process
        lock.acquire(tmp_path / "unused")
    unused.release()
    assert not (tmp_path / "unused").exists()


def test_a_refused_claim_removes_the_parents_it_made_while_empty(tmp_path):
    """runs/ made for a refused run goes with it; kept where another run was made beside it."""
    alone = rundir.claim(tmp_path / "runs" / "a" / "x")
    alone.abandon()
    assert list(tmp_path.iterdir()) == []
    first = rundir.claim(tmp_path / "runs" / "b")
    sibling = rundir.claim(tmp_path / "runs" / "c")  # a run beside it, which wrote something
    (tmp_path / "runs" / "c" / "metrics.jsonl").touch()
    sibling.release()
    first.abandon()
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["c"]


def test_storage_through_a_file_is_one_line(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(StorageError) as error:
        rundir.claim(tmp_path / "file" / "run")
    assert str(error.value).startswith(f"cannot write to the run directory {tmp_path}/file/run: "
                                       f"{os.strerror(errno.ENOTDIR)} (disk ")


def test_storage_cause_is_found_in_wrapped_and_textual_errors():
    text = ValueError('RESOURCE_EXHAUSTED: Failed to write 7858 bytes to file 14: No space left '
                      "on device [os_error_code='28']")
    assert storage.storage_cause(text) == os.strerror(errno.ENOSPC)
    try:
        try:
            raise OSError(errno.EROFS, "ro")
        except OSError as inner:
            raise RuntimeError("orbax wrapper") from inner
    except RuntimeError as outer:
        assert storage.storage_cause(outer) == os.strerror(errno.EROFS)
    assert storage.storage_cause(ValueError("shape mismatch")) is None


def test_disk_is_named_with_its_free_space(tmp_path):
    usage = shutil.disk_usage(tmp_path)  # computed independently of describe_disk
    described = storage.describe_disk(tmp_path / "not" / "yet")
    mount = tmp_path
    while not os.path.ismount(mount):
        mount = mount.parent
    assert described.startswith(f"disk {mount} (")
    assert f"of {usage.total / 2**30:.1f} GiB" in described or f"of {usage.total / 2**20:.1f} MiB" in described
