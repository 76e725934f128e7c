"""Which config changes a resumed run may make.

A checkpoint is only meaningful for the config that wrote it. Changes to how the same maths
is executed (mesh, sharding, remat, kernel, hardware and XLA options, logging and eval cadence,
checkpoint policy) are allowed and logged; anything else (model shape, data, optimizer,
seeds, step count: the schedule depends on it) would silently make a different run, so it is
refused. Unknown keys count as meaning changes: new options are safe until listed here.
"""

import dataclasses
from typing import Any

# Dotted key prefixes of the saved config whose change keeps the run the same run.
EXECUTION_ONLY = (
    "name", "mesh", "sharding", "remat", "kernel", "hardware", "checkpoint",
    "trainer.log_every", "trainer.eval_every", "trainer.eval_batches", "trainer.sample_tokens",
    "trainer.sample_prompt", "trainer.sample_temperature", "trainer.nonfinite", "trainer.watchdog_s",
)

_ABSENT = "<absent>"


@dataclasses.dataclass(frozen=True)
class ConfigChanges:
    allowed: list[str]  # "key: old -> new", execution-only
    refused: list[str]  # "key: old -> new", changes what the run computes


def compare(*, saved: dict, current: dict) -> ConfigChanges:
    """Differences between two plain config containers, split by whether resuming may go on."""
    old, new = _flatten(saved), _flatten(current)
    allowed, refused = [], []
    for key in sorted(old.keys() | new.keys()):
        before, after = old.get(key, _ABSENT), new.get(key, _ABSENT)
        if before == after:
            continue
        line = f"{key}: {before!r} -> {after!r}"
        (allowed if _execution_only(key) else refused).append(line)
    return ConfigChanges(allowed=allowed, refused=refused)


def _execution_only(key: str) -> bool:
    return any(key == p or key.startswith(p + ".") for p in EXECUTION_ONLY)


def _flatten(node: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(node, dict) and node:
        out = {}
        for k, v in node.items():
            out |= _flatten(v, f"{prefix}.{k}" if prefix else str(k))
        return out
    return {prefix: node}
