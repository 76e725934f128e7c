"""What Hydra itself may run from a config: checked on the composed config before Hydra
instantiates anything, with the same rule as our own `_target_`s (only what something
registered by name may run).

Where a config can name code for Hydra or Python to run, and what is allowed there:
- `_target_` anywhere under `hydra`: Hydra instantiates its callbacks, launcher and sweeper,
  and every `_target_` nested inside them before them. Allowed: our sweep-summary callback as
  `hydra.callbacks.<name>`, the launcher and sweeper plugins Hydra discovers (by class name)
  as `hydra.launcher` / `hydra.sweeper`, and nested inside them only what the configs of
  Hydra and its installed plugins name (e.g. the Optuna sweeper's samplers).
- `hydra.job_logging` / `hydra.hydra_logging` (logging.config.dictConfig calls `class:` and
  `():`, and imports the module of an `ext://` value): the standard library's logging
  handlers, formatters and filters; `ext://sys.stdout` and `ext://sys.stderr`.
- `hydra.job.env_set` (set for the job and inherited by every process it starts): no
  variable that makes a process load code (the dynamic linker's, Python's, shells', PATH).
"""

import importlib
import inspect
import logging
import logging.handlers
from typing import Any, Iterator

from omegaconf import DictConfig, OmegaConf

CALLBACKS = {"hydralearn.cli.sweep.SweepSummary"}
LOGGING_MODULES = ("logging", "logging.handlers")
STREAMS = ("ext://sys.stdout", "ext://sys.stderr")
# Environment variables that name code to load: libraries (dynamic linker, glibc's gconv,
# JAX's PJRT plugins), Python modules and start-up files, shell start-up files, programs
# (PATH), matplotlib backends (`module://`). Every PYTHON* variable but those that only change
# how Python runs.
CODE_ENV_PREFIXES = ("LD_", "DYLD_", "PYTHON")
CODE_ENV = {"PATH", "GCONV_PATH", "PJRT_NAMES_AND_LIBRARY_PATHS", "BASH_ENV", "ENV", "MPLBACKEND"}
PLAIN_PYTHON_ENV = {"PYTHONUNBUFFERED", "PYTHONHASHSEED", "PYTHONFAULTHANDLER",
                    "PYTHONDONTWRITEBYTECODE", "PYTHONIOENCODING", "PYTHONUTF8"}


def hydra_errors(hydra: DictConfig | None) -> list[str]:
    """One line per place under `hydra` that names code nobody allowlisted."""
    if hydra is None:
        return []
    plain = OmegaConf.to_container(hydra, resolve=False)
    errors = [line for path, node in _dicts(plain, "hydra") if "_target_" in node
              if (line := _target_error(path, str(node["_target_"])) or _callback_error(path, node))]
    for kind in ("job_logging", "hydra_logging"):
        errors += _logging_errors(plain.get(kind), f"hydra.{kind}")
    return errors + env_errors((plain.get("job") or {}).get("env_set") or {})


def _target_error(path: str, target: str) -> str | None:
    refused = f"{path}: _target_ {target!r} is not allowed"
    if path.startswith("hydra.callbacks.") and path.count(".") == 2:
        return None if target in CALLBACKS else (
            f"{refused}: only {', '.join(sorted(CALLBACKS))} may run from config")
    if path in ("hydra.launcher", "hydra.sweeper"):
        kind = path.removeprefix("hydra.")
        return None if target in hydra_plugins(kind) else (
            f"{refused}: not an installed Hydra {kind} plugin; choose one with hydra/{kind}=<name>")
    return None if target in plugin_targets() else (
        f"{refused}: under hydra, only hydra.callbacks.<name>, hydra.launcher, hydra.sweeper "
        "and what Hydra's installed plugins name may run")


def _callback_error(path: str, node: dict) -> str | None:
    """An allowlisted callback's arguments, bound to its signature: Hydra would instantiate it
    only when the job starts, and report a mistake there as a traceback."""
    if not (path.startswith("hydra.callbacks.") and path.count(".") == 2):
        return None
    from hydra.utils import get_class

    kwargs = {k: v for k, v in node.items() if not (k.startswith("_") and k.endswith("_"))}
    try:
        inspect.signature(get_class(str(node["_target_"]))).bind(*node.get("_args_", []), **kwargs)
    except TypeError as e:
        return f"{path}: {node['_target_']}: {e}"
    return None


def hydra_plugins(kind: str) -> set[str]:
    """Class names of the launcher or sweeper plugins Hydra discovers."""
    from hydra.core.plugins import Plugins
    from hydra.plugins.launcher import Launcher
    from hydra.plugins.sweeper import Sweeper

    base = {"launcher": Launcher, "sweeper": Sweeper}[kind]
    return {f"{c.__module__}.{c.__qualname__}" for c in Plugins.instance().discover(base)}


def plugin_targets(path: str = "hydra") -> set[str]:
    """Every `_target_` in the configs that Hydra and its installed plugins store under
    `hydra/` in Hydra's ConfigStore: code installed packages name, never a config file."""
    from hydra.core.config_store import ConfigStore
    from hydra.core.object_type import ObjectType

    hydra_plugins("sweeper")  # discovery imports the plugins, which store their configs
    store, found = ConfigStore.instance(), set()
    for name in store.list(path):
        child = f"{path}/{name}"
        if store.get_type(child) is ObjectType.GROUP:
            found |= plugin_targets(child)
            continue
        plain = OmegaConf.to_container(store.load(child).node, resolve=False)
        found |= {str(node["_target_"]) for _, node in _dicts(plain, child) if "_target_" in node}
    return found


def _logging_errors(node: Any, where: str) -> list[str]:
    """`class:` and `():` of a dictConfig section name callables to call; `ext://` imports."""
    errors = []
    for path, entry in _dicts(node, where):
        for key, value in entry.items():
            if key in ("class", "()") and not _is_logging_class(value):
                errors.append(f"{path}: {key} {value!r} is not allowed: logging may use only the "
                              "standard library's logging handlers, formatters and filters")
            elif isinstance(value, str) and value.startswith("ext://") and value not in STREAMS:
                errors.append(f"{path}.{key}: {value!r} is not allowed: only "
                              f"{' and '.join(STREAMS)}")
    return errors


def _is_logging_class(name: Any) -> bool:
    module, _, attr = str(name).rpartition(".")
    if module not in LOGGING_MODULES:
        return False
    found = getattr(importlib.import_module(module), attr, None)
    # A QueueHandler's config names more callables (its queue and listener, Python 3.12+).
    return (isinstance(found, type) and not issubclass(found, logging.handlers.QueueHandler)
            and issubclass(found, (logging.Handler, logging.Formatter, logging.Filter)))


def env_errors(env: dict) -> list[str]:
    """`hydra.job.env_set` entries that would make the job's processes load code."""
    return [f"hydra.job.env_set.{name} is not allowed: it makes processes load code; set it in "
            "the environment that starts hydralearn instead" for name in env if _loads_code(str(name))]


def _loads_code(name: str) -> bool:
    if name in PLAIN_PYTHON_ENV:
        return False
    return name in CODE_ENV or name.startswith(CODE_ENV_PREFIXES)


def _dicts(node: Any, path: str) -> Iterator[tuple[str, dict]]:
    """(dotted path, mapping) for every mapping in a plain container, parents first."""
    if isinstance(node, dict):
        yield path, node
        for key, child in node.items():
            yield from _dicts(child, f"{path}.{key}")
    elif isinstance(node, list):
        for i, child in enumerate(node):
            yield from _dicts(child, f"{path}[{i}]")
