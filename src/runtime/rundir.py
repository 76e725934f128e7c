"""The run directory: a plain name under the runs root, usable storage, one live holder.

`claim` is what a training process does before it writes anything: create the directory if
needed (and prove it writable), then take its lock. A run refused after that calls
`Claim.abandon`, which removes the directory again if this process created it, so refused
runs leave nothing behind and never touch a directory another process holds.
"""

import dataclasses
import os
import shutil
from pathlib import Path

from hydralearn.config.run_dir import RunDir
from hydralearn.runtime import lock, storage


def within(root: Path, path: Path) -> bool:
    """Whether `path` lies inside `root` once both are resolved (symlinks and `..` followed)."""
    return Path(path).resolve().is_relative_to(Path(root).resolve())


@dataclasses.dataclass
class Claim:
    path: Path
    created: bool  # this process created the directory
    lock: lock.RunLock
    started: bool = False  # the run began writing: a failure no longer removes the directory
    made: Path | None = None  # the outermost directory made with it (e.g. runs/), if any

    def abandon(self) -> None:
        """The run was refused: release, and remove the directory if this process made it."""
        self.lock.release()
        if self.created:
            _remove(self.path, up_to=self.made)

    def release(self) -> None:
        """The run is over; a directory this process made and left empty is removed."""
        self.lock.release()
        if self.created and self.path.is_dir() and os.listdir(self.path) == [RunDir(self.path).lock.name]:
            _remove(self.path, up_to=self.made)


def _remove(run_dir: Path, *, up_to: Path | None) -> None:
    """`run_dir`, then each parent made with it while it is empty: another run may have been
    made beside it since (runs/ is shared), so a parent is removed only if nothing is there."""
    shutil.rmtree(run_dir, ignore_errors=True)
    parent = Path(run_dir).absolute().parent
    while up_to is not None and parent.is_relative_to(up_to):
        try:
            parent.rmdir()
        except OSError:
            return  # not empty, or already gone
        parent = parent.parent


def outermost_missing(path: Path) -> Path | None:
    """The outermost directory that creating `path` would make (None if it exists)."""
    path, missing = Path(path).absolute(), None
    while not path.exists() and path != path.parent:
        path, missing = path.parent, path
    return missing


def claim(run_dir: Path, *, primary: bool = True) -> Claim:
    """Create (if needed) and lock `run_dir`. Raises StorageError for unusable storage and
    RunDirLocked if another live process holds it; a directory made here is removed again."""
    run_dir = Path(run_dir)
    made = outermost_missing(run_dir)
    created = storage.prepare_dir(run_dir)
    try:
        held = lock.acquire(run_dir, primary=primary)
    except BaseException:
        if created:
            _remove(run_dir, up_to=made)
        raise
    # Only the process holding the lock may remove a directory again (one of a multi-host job).
    return Claim(path=run_dir, created=created and primary, lock=held, made=made)
