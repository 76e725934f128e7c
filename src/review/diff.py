"""Semantic diff of two configs: changed keys by config group, what the change costs (derived
numbers of both plans), and whether a checkpoint of A can be resumed as B; for two run
directories, also what each run achieved (its summary.json: held-out loss, speed, goodput).

A side is a list of overrides (resolved for its stated hardware, like the planner), a golden
`<name>.config.yaml`, any saved resolved config, or a run directory holding
`resolved_config.yaml`. Both sides are compared fully resolved: an auto that resolves
differently shows up as a changed key.
"""

import dataclasses
from pathlib import Path
from typing import Any

import jax
from flax import nnx

from hydralearn.config import compose as compose_config
from hydralearn.config import schema
from hydralearn.compose.build import abstract_params
from hydralearn.config.compose import from_container, to_container
from hydralearn.config.files import read_mapping
from hydralearn.config.flat import flatten
from hydralearn.config.run_dir import RunDir
from hydralearn.compose.optim import build_optimizer
from hydralearn.config.resume_rule import Effect, classify, compare
from hydralearn.errors import ConfigError
from hydralearn.review.plan import Plan, load_resolved, make_plan



@dataclasses.dataclass(frozen=True)
class Side:
    label: str
    config: schema.TrainConfig
    summary: dict | None = None  # a run directory's summary.json, if it has one


# What a run achieved, from its summary.json (goodput: runtime/goodput.py), in this order.
OUTCOMES = ("eval_loss", "bits_per_byte", "train_loss", "steps", "steps_per_s", "tokens_per_s",
            "mfu", "wall_s", "goodput", "lost_to_restarts_s")


@dataclasses.dataclass(frozen=True)
class Change:
    key: str
    group: str  # the config group the key belongs to ("model/ffn", "optim", "run")
    kind: str  # added | removed | changed
    old: Any
    new: Any
    effect: Effect


@dataclasses.dataclass(frozen=True)
class Delta:
    name: str
    old: float
    new: float


@dataclasses.dataclass(frozen=True)
class Resume:
    possible: bool
    reason: str
    mismatched: tuple[str, ...]  # parameter / optimizer-state paths whose shape or dtype differ


@dataclasses.dataclass(frozen=True)
class ConfigDiff:
    a: str
    b: str
    changes: tuple[Change, ...]
    deltas: tuple[Delta, ...]  # only the derived numbers that differ
    resume: Resume
    outcomes: tuple[Delta, ...] = ()  # both sides runs with a summary: every outcome, A and B

    @property
    def identical(self) -> bool:
        return not self.changes


def load_side(spec: list[str], location: compose_config.Location = compose_config.DEFAULT) -> Side:
    """One side of a diff from the command line; ConfigError if it cannot be read."""
    if len(spec) == 1 and "=" not in spec[0] and Path(spec[0]).exists():
        path = Path(spec[0])
        summary = None
        if path.is_dir():
            run = RunDir(path)
            path = run.resolved_config
            if not path.exists():
                raise ConfigError([f"{spec[0]}: not a run directory (it has no {path.name})"])
            summary = _read_summary(run)
        return Side(label=str(spec[0]), config=_load_file(path), summary=summary)
    if len(spec) == 1 and spec[0].endswith((".yaml", ".yml")) and "=" not in spec[0]:
        raise ConfigError([f"{spec[0]}: no such file"])
    return Side(label=" ".join(spec) or "(defaults)", config=load_resolved(spec, location))


def _load_file(path: Path) -> schema.TrainConfig:
    container = read_mapping(path)
    try:
        return from_container(container)
    except ConfigError as e:
        raise ConfigError([f"{path}: {line}" for line in e.errors]) from None


def diff(a: Side, b: Side) -> ConfigDiff:
    changes = tuple(key_changes(to_container(a.config), to_container(b.config)))
    plan_a, plan_b = make_plan(a.config), make_plan(b.config)
    return ConfigDiff(a=a.label, b=b.label, changes=changes, deltas=tuple(_deltas(plan_a, plan_b)),
                      resume=resume_check(a.config, b.config), outcomes=tuple(outcomes(a, b)))


def outcomes(a: Side, b: Side) -> list[Delta]:
    """What two runs achieved, side by side (nothing unless both have a summary.json)."""
    if a.summary is None or b.summary is None:
        return []
    values = [{**s, **{k: v for k, v in (s.get("goodput") or {}).items()}} for s in (a.summary, b.summary)]
    return [Delta(name=k, old=float(values[0][k]), new=float(values[1][k])) for k in OUTCOMES
            if _number(values[0].get(k)) and _number(values[1].get(k))]


def _read_summary(run: RunDir) -> dict | None:
    """A run's summary.json (None: it has not finished, or the file is unreadable)."""
    try:
        summary = read_mapping(run.summary)
    except (ConfigError, OSError):
        return None
    return summary if isinstance(summary, dict) and summary.get("status") == "completed" else None


def _number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and x == x


def key_changes(a: dict, b: dict) -> list[Change]:
    # Lists as tuples: a Change is frozen, and shows them as it always has.
    flat_a, flat_b = ({k: tuple(v) if isinstance(v, list) else v for k, v in flatten(tree).items()}
                      for tree in (a, b))
    out = []
    for key in sorted(flat_a.keys() | flat_b.keys(), key=lambda k: (config_group(k), k)):
        old, new = flat_a.get(key, _ABSENT), flat_b.get(key, _ABSENT)
        if old == new and type(old) is type(new):
            continue
        kind = "added" if old is _ABSENT else "removed" if new is _ABSENT else "changed"
        out.append(Change(key=key, group=config_group(key), kind=kind, effect=classify(key),
                          old=None if old is _ABSENT else old, new=None if new is _ABSENT else new))
    return out


_ABSENT = object()


def config_group(key: str) -> str:
    """The deepest config group directory of conf/ that `key` lies under ("run" if none)."""
    parts = key.split(".")
    group = "run"
    for i in range(1, len(parts)):
        if (Path(compose_config.CONF_DIR) / Path(*parts[:i])).is_dir():
            group = "/".join(parts[:i])
    return group


def resume_check(a: schema.TrainConfig, b: schema.TrainConfig) -> Resume:
    """Whether hydralearn-train resumes a checkpoint of A under config B: the same rule it
    applies (compose/resume_rule.compare), plus the exact comparison of both state trees."""
    tree_a, tree_b = _state_shapes(a), _state_shapes(b)
    mismatched = tuple(sorted((p for p in tree_a.keys() | tree_b.keys() if tree_a.get(p) != tree_b.get(p)),
                             key=lambda p: (not p.startswith("params."), p)))  # parameters first
    if mismatched:
        shown = ", ".join(f"{p}: {_shape_text(tree_a.get(p))} -> {_shape_text(tree_b.get(p))}"
                          for p in mismatched[:3])
        more = f" and {len(mismatched) - 3} more" if len(mismatched) > 3 else ""
        return Resume(possible=False, mismatched=mismatched,
                      reason=f"parameter or optimizer-state shapes differ ({shown}{more})")
    verdict = compare(saved=to_container(a), current=to_container(b))
    if verdict.refused:
        keys = ", ".join(line.split(":", 1)[0] for line in verdict.refused)
        return Resume(possible=False, mismatched=(),
                      reason=f"same shapes, but hydralearn-train refuses to resume when these change "
                             f"what the run computes: {keys} (train it under a new name)")
    return Resume(possible=True, mismatched=(),
                  reason="same shapes and maths; only how it runs changes" if verdict.allowed else "identical")


def _state_shapes(config: schema.TrainConfig) -> dict[str, tuple]:
    _, params = abstract_params(config)
    tx = build_optimizer(config.optim, schedule=config.schedule, total_steps=config.trainer.steps).transform
    state = {"params": params, "opt_state": jax.eval_shape(tx.init, params)}
    leaves = jax.tree_util.tree_leaves_with_path(state, is_leaf=lambda x: isinstance(x, nnx.Variable))
    out = {}
    for path, leaf in leaves:
        value = leaf.get_value() if isinstance(leaf, nnx.Variable) else leaf
        out[jax.tree_util.keystr(path, simple=True, separator=".")] = (tuple(value.shape), str(value.dtype))
    return out


def _shape_text(entry) -> str:
    return "absent" if entry is None else f"{entry[0]} {entry[1]}"


def _deltas(a: Plan, b: Plan) -> list[Delta]:
    da, db = a.derived(), b.derived()
    out = [Delta(name=k, old=float(da[k]), new=float(db[k])) for k in da if da[k] != db[k]]
    if a.mesh != b.mesh:
        out.append(Delta(name="mesh", old=_mesh_text(a.mesh), new=_mesh_text(b.mesh)))
    return out


def _mesh_text(mesh: dict[str, int]) -> str:
    return " ".join(f"{k}={v}" for k, v in mesh.items())
