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


def name_errors(name: str) -> list[str]:
    """Why `name` cannot name a run directory (empty if it can): it must be one plain path
    component, so that runs/<name> stays under runs/. hydra.run.dir is the escape hatch."""
    fix = "use a plain name such as name=my_run, or set hydra.run.dir=<dir> to choose a directory"
    if not name or not name.strip():
        return [f"name={name!r} is empty; {fix}"]
    if "/" in name or "\\" in name:
        return [f"name={name!r} contains a path separator; {fix}"]
    if name in (".", ".."):
        return [f"name={name!r} is not a plain name; {fix}"]
    if any(ord(c) < 32 for c in name):
        return [f"name={name!r} contains a control character; {fix}"]
    return []


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
