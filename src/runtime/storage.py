"""Storage failures in one line: which path, what went wrong, and on which disk.

Libraries report the same errno in different shapes (an OSError, a tensorstore ValueError whose
text carries "[OS error 28: No space left on device]", an orbax error wrapping either), so the
cause is looked up along the exception chain, by errno or by the errno's standard text.
"""

import errno
import os
import shutil
import tempfile
from pathlib import Path

from hydralearn.runtime.errors import StorageError

# Errors that are about the storage, not the program: reported in one line, not as a crash.
STORAGE_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM,
                  errno.EIO, errno.ENOTDIR, errno.ENOENT)
# Matched in the text of non-OSError exceptions; ENOENT/EPERM texts are too common to trust there.
_TEXT_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EIO)


def storage_cause(error: BaseException) -> str | None:
    """'No space left on device' (etc.) if a storage failure is behind `error`, else None."""
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, OSError) and error.errno in STORAGE_ERRNOS:
            return os.strerror(error.errno)
        text = str(error)
        for code in _TEXT_ERRNOS:
            if os.strerror(code) in text:
                return os.strerror(code)
        error = error.__cause__ or error.__context__
    return None


def describe_disk(path: Path) -> str:
    """'disk /mnt/runs (tmpfs): 0.1 MiB free of 64.0 MiB' for the filesystem holding `path`."""
    existing = Path(path).absolute()
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    mount = existing
    while not os.path.ismount(mount) and mount != mount.parent:
        mount = mount.parent
    try:
        usage = shutil.disk_usage(existing)
    except OSError:
        return f"disk {mount} ({_device(mount)})"
    return (f"disk {mount} ({_device(mount)}): {_size(usage.free)} free of {_size(usage.total)}")


def _device(mount: Path) -> str:
    """The device or filesystem type mounted at `mount`, from /proc/self/mounts (Linux)."""
    try:
        lines = Path("/proc/self/mounts").read_text().splitlines()
    except OSError:
        return "unknown device"
    found = [line.split() for line in lines if len(line.split()) > 2 and line.split()[1] == str(mount)]
    return found[-1][0] if found else "unknown device"  # the last mount on a path is the visible one


def _size(n: int) -> str:
    return f"{n / 2**30:.1f} GiB" if n >= 2**30 else f"{n / 2**20:.1f} MiB"


def failed(what: str, path: Path, error: BaseException) -> StorageError | None:
    """A one-line StorageError for `error` if it is a storage failure, else None."""
    cause = storage_cause(error)
    if cause is None:
        return None
    return StorageError(f"{what} {path}: {cause} ({describe_disk(path)})")


def prepare_dir(directory: Path) -> bool:
    """Create `directory` if missing and prove it writable; True if it was created now.

    Raises StorageError (one line naming the path and the disk) for a read-only, full or
    missing filesystem, or a path that runs through a file.
    """
    directory = Path(directory)
    created = not directory.exists()
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=directory, prefix=".hydralearn-probe-") as probe:
            probe.write(b"x")
            probe.flush()
            os.fsync(probe.fileno())
    except OSError as e:
        raise (failed("cannot write to the run directory", directory, e)
               or StorageError(f"cannot write to the run directory {directory}: {e.strerror or e}")) from e
    return created
