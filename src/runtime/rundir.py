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

    def abandon(self) -> None:
        """The run was refused: release, and remove the directory if this process made it."""
        self.lock.release()
        if self.created:
            shutil.rmtree(self.path, ignore_errors=True)

    def release(self) -> None:
        """The run is over; a directory this process made and left empty is removed."""
        self.lock.release()
        if self.created and self.path.is_dir() and os.listdir(self.path) == [RunDir(self.path).lock.name]:
            shutil.rmtree(self.path, ignore_errors=True)


def claim(run_dir: Path, *, primary: bool = True) -> Claim:
    """Create (if needed) and lock `run_dir`. Raises StorageError for unusable storage and
    RunDirLocked if another live process holds it; a directory made here is removed again."""
    run_dir = Path(run_dir)
    created = storage.prepare_dir(run_dir)
    try:
        held = lock.acquire(run_dir, primary=primary)
    except BaseException:
        if created:
            shutil.rmtree(run_dir, ignore_errors=True)
        raise
    # Only the process holding the lock may remove a directory again (one of a multi-host job).
    return Claim(path=run_dir, created=created and primary, lock=held)
