"""What Hydra itself may instantiate from a config: checked on the composed config before
Hydra instantiates anything, with the same rule as our own `_target_`s (only what something
registered by name may run).

Hydra instantiates `hydra.callbacks` (any callable), the launcher and sweeper (its plugins),
and Python's logging configures handlers and formatters from `hydra.job_logging` /
`hydra.hydra_logging` (`class:` and `():` name any callable). Allowed: our sweep-summary
callback, Hydra's own launcher and sweeper plugins (those Hydra discovers, by class name),
and the standard library's logging classes.
"""

from typing import Any

from omegaconf import DictConfig, OmegaConf

CALLBACKS = {"hydralearn.cli.sweep.SweepSummary"}
LOGGING_PREFIXES = ("logging.",)


def hydra_errors(hydra: DictConfig | None) -> list[str]:
    if hydra is None:
        return []
    errors = []
    for name, node in (hydra.get("callbacks") or {}).items():
        target = _target(node)
        if target not in CALLBACKS:
            errors.append(f"hydra.callbacks.{name}: _target_ {target!r} is not allowed: only "
                          f"{', '.join(sorted(CALLBACKS))} may run from config")
    for kind in ("launcher", "sweeper"):
        target = _target(hydra.get(kind))
        if target is not None and target not in hydra_plugins(kind):
            errors.append(f"hydra.{kind}: _target_ {target!r} is not an installed Hydra {kind} "
                          f"plugin; choose one with hydra/{kind}=<name>")
    for kind in ("job_logging", "hydra_logging"):
        errors += _logging_errors(hydra.get(kind), f"hydra.{kind}")
    return errors


def _target(node: Any) -> str | None:
    if isinstance(node, DictConfig) and "_target_" in node:
        return str(OmegaConf.to_container(node)["_target_"])
    return None


def hydra_plugins(kind: str) -> set[str]:
    """Class names of the launcher or sweeper plugins Hydra discovers."""
    from hydra.core.plugins import Plugins
    from hydra.plugins.launcher import Launcher
    from hydra.plugins.sweeper import Sweeper

    base = {"launcher": Launcher, "sweeper": Sweeper}[kind]
    return {f"{c.__module__}.{c.__qualname__}" for c in Plugins.instance().discover(base)}


def _logging_errors(node: Any, where: str) -> list[str]:
    """`class:` and `():` of logging.config.dictConfig sections name callables to call."""
    if not isinstance(node, DictConfig):
        return []
    errors = []
    plain = OmegaConf.to_container(node, resolve=False)
    for section in ("handlers", "formatters", "filters"):
        for name, entry in (plain.get(section) or {}).items():
            for key in ("class", "()"):
                value = entry.get(key) if isinstance(entry, dict) else None
                if value is not None and not str(value).startswith(LOGGING_PREFIXES):
                    errors.append(f"{where}.{section}.{name}: {key} {value!r} is not allowed: "
                                  "logging may only use the standard library's logging classes")
            # `ext://module.attr` imports any module; sys.stdout/sys.stderr are what logs need.
            for key, value in (entry.items() if isinstance(entry, dict) else ()):
                if isinstance(value, str) and value.startswith("ext://") and not value.startswith("ext://sys."):
                    errors.append(f"{where}.{section}.{name}.{key}: {value!r} is not allowed: "
                                  "only ext://sys.stdout and ext://sys.stderr")
    return errors
