"""JAX's persistent compilation cache (`trainer.compile_cache`), so that a rerun, a resume or a
sweep point whose step is unchanged loads its compiled programs instead of compiling them.

XLA keys each entry on the program, its compile options and flags, the devices and the jax
version: a changed step (another shape, remat policy or flag) is compiled afresh. What is
cached stays JAX's choice (`jax_persistent_cache_min_compile_time_secs`, 1 s: programs that
compile faster gain little from a disk read), as do JAX's own environment variables for it.
Only process 0 of a job writes entries (JAX's rule); every process reads.

A directory that cannot be used is one warning and the run goes on uncached: the cache only
saves start-up time, so it must not stop a run (a requeued job on a host whose home is
read-only, say). Delete the directory to reclaim its space; nothing else needs it.
"""

import logging
import os
import tempfile
from pathlib import Path

from hydralearn.config.schema import AUTO

logger = logging.getLogger(__name__)


def user_cache_dir(environ: dict | None = None) -> Path:
    """hydralearn's per-user cache: $XDG_CACHE_HOME/hydralearn, else ~/.cache/hydralearn."""
    environ = os.environ if environ is None else environ
    return Path(environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "hydralearn"


def directory(value: str | None, environ: dict | None = None) -> Path | None:
    """The directory `trainer.compile_cache` names (None: off), absolute. `auto`: JAX's own
    JAX_COMPILATION_CACHE_DIR where it is set, else the per-user cache's `jax`."""
    environ = os.environ if environ is None else environ
    if not value:
        return None
    if value == AUTO:
        value = environ.get("JAX_COMPILATION_CACHE_DIR") or user_cache_dir(environ) / "jax"
    return Path(value).expanduser().absolute()


def resolved(value: str | None) -> str | None:
    """`value` as the run's saved config records it: the directory, concrete, or null."""
    found = directory(value)
    return None if found is None else str(found)


def use(value: str | None) -> Path | None:
    """JAX's persistent compilation cache in the directory `value` names, or off; before the
    first compile. Returns the directory in use (None: uncached)."""
    import jax

    where = usable(value)
    # Off here also overrides a JAX_COMPILATION_CACHE_DIR that jax read from the environment.
    jax.config.update("jax_enable_compilation_cache", where is not None)
    if where is not None:
        jax.config.update("jax_compilation_cache_dir", str(where))
    return where


def usable(value: str | None) -> Path | None:
    """The directory `value` names, made if absent, if a cache can be kept there; else None
    (off, or one warning saying why not)."""
    where = directory(value)
    problem = where and _problem(where)
    if problem:
        logger.warning(f"trainer.compile_cache={value}: {where} {problem}; running without the "
                       "compilation cache (set it to a writable directory, or null for none)")
        return None
    return where


def _problem(path: Path) -> str | None:
    """Why no cache can be kept in `path` (None: it can): made if absent, then written to."""
    if path.exists() and not path.is_dir():
        return "is a file, not a directory"
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as e:
        return f"cannot be written: {e.strerror or e}"
    return None
