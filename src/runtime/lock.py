"""One live process (or one multi-host job) per run directory.

`acquire` takes an exclusive advisory lock (`flock`) on `<run_dir>/run.lock` and writes the
holder's host, pid and start time into it. The kernel drops the lock when its holder exits,
however it exits (kill -9 included), so a stale lock never needs cleaning: the next start
simply takes it. A second start while the holder lives is refused in one line naming it.

The lock file is never deleted: deleting it would let a newcomer lock a fresh file while a
third process still holds the old one.

Where it works: local filesystems, and NFSv4 (Linux maps flock to NFS byte-range locks).
Lustre needs the `flock` mount option; on storage without locks (object stores) it protects
only processes on one host. A child made by fork() without exec shares the lock and keeps it
alive after its parent dies; the lock file is opened close-on-exec so exec'd children do not.

Multi-host jobs: only process 0 calls `acquire` (`primary=True`); the others pass
`primary=False` and hold nothing. They respect the lock through the job itself: they only
start together with process 0 (jax.distributed.initialize), and when process 0 is refused it
exits non-zero before the first collective, which ends the whole job. The scale-out code
should make every process wait at a barrier right after process 0 has taken the lock.
"""

import dataclasses
import datetime
import fcntl
import json
import os
import socket
from pathlib import Path

from hydralearn.config.run_dir import RunDir
from hydralearn.runtime.errors import RunRefused


class RunDirLocked(RunRefused):
    """Another live process holds the run directory."""


@dataclasses.dataclass
class RunLock:
    path: Path
    fd: int | None  # None: not the primary process of a multi-host job, nothing held

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing the last descriptor drops the flock
            self.fd = None

    def __enter__(self) -> "RunLock":
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def acquire(run_dir: Path, *, primary: bool = True) -> RunLock:
    """Hold `run_dir` for this process; RunDirLocked (one line, naming the holder) if another
    live process holds it. `run_dir` must exist."""
    path = RunDir(run_dir).lock
    if not primary:
        return RunLock(path=path, fd=None)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = describe_holder(_read(fd))
        os.close(fd)
        raise RunDirLocked(f"{run_dir} is in use by {holder}; wait for it to end or stop it, or "
                           "set name=<new name> for another run") from None
    record = {"host": socket.gethostname(), "pid": os.getpid(),
              "since": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
    os.ftruncate(fd, 0)
    os.pwrite(fd, (json.dumps(record) + "\n").encode(), 0)
    return RunLock(path=path, fd=fd)


def _read(fd: int) -> dict:
    try:
        return json.loads(os.pread(fd, 4096, 0).decode())
    except (OSError, ValueError):
        return {}  # the holder is between taking the lock and writing its record


def describe_holder(record: dict) -> str:
    """'pid 1234 on host vm (since 2025-01-01T12:00:00+00:00)'; says when a pid on this host
    is gone (then a child it forked still holds the lock)."""
    if "pid" not in record:
        return "another process"
    text = f"pid {record['pid']} on host {record.get('host', '?')} (since {record.get('since', '?')})"
    if record.get("host") == socket.gethostname() and not _alive(int(record["pid"])):
        text += ", which has exited: a process it forked still holds the lock"
    return text


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
