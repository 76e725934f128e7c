"""`init.hf=<dir>` at composition time: config.json checked against the composed model
before any weight is read (every mismatch listed, with the overrides that fix it), or, with
`init.hf_config=adopt`, turned into overrides so the run's config (and resolved_config.yaml)
holds the checkpoint's architecture concretely. Composes again only when init.hf is set.
jax-free: runs before `--cfg` prints.
"""

import json
from pathlib import Path
from typing import Callable

from omegaconf import DictConfig, OmegaConf

from hydralearn.config import overrides as override_check
from hydralearn.config.flat import flatten
from hydralearn.config.schema import HfConfigMode
from hydralearn.errors import ConfigError
from hydralearn.interop.hf_config import HF_NAMES, from_hf_config

# Model keys that are how the run computes, not what: config.json says nothing about them.
NOT_ARCHITECTURE = ("param_dtype", "compute_dtype", "init_std", "adapter")


def composed(overrides: list[str], compose: Callable[[list[str]], DictConfig], *,
             adopt: bool = True) -> DictConfig:
    """The run's config, composed by `compose`: once, or, with `init.hf_config=adopt`, again
    with config.json's overrides; ConfigError listing every disagreement between config.json
    and the model in `check` mode, before any weight is read. `adopt=False`: a multirun's
    point, which Hydra's sweeper composes itself, so adopting is refused."""
    cfg = compose(list(overrides))
    hf_dir = OmegaConf.select(cfg, "init.hf")
    if not hf_dir:
        return cfg
    found = from_hf_config(read_config(hf_dir), seq_len=cfg.data.seq_len)
    merged = _merge(overrides, found)
    if cfg.init.hf_config == HfConfigMode.adopt:
        if not adopt:
            raise ConfigError(["init.hf_config=adopt does not apply to a multirun (Hydra composes "
                               "its points); sweep with init.hf_config=check and the model overrides "
                               "its error lists"])
        named = any(o.key_or_group == "name" for o in override_check.parse(overrides))
        # Not the borrowed family preset's name: the sizes came from config.json.
        return compose(merged if named else [*merged, f"name={Path(hf_dir).name}"])
    problems = mismatches(cfg, compose(merged), found)
    if problems:
        fixes = " ".join(o for o in found if not o.startswith("model="))
        raise ConfigError([f"init.hf={hf_dir}: {p}" for p in problems] + [
            f"init.hf={hf_dir}: fix all with: {fixes}; or set init.hf_config=adopt to take the "
            "architecture from config.json"])
    return cfg


def read_config(hf_dir: str) -> dict:
    path = Path(hf_dir) / "config.json"
    if not path.is_file():
        raise ConfigError([f"init.hf={hf_dir}: no config.json there (expected a Hugging Face "
                           "checkpoint directory: config.json and *.safetensors)"])
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ConfigError([f"init.hf={hf_dir}: config.json is not JSON ({e})"]) from None


def _merge(user: list[str], found: list[str]) -> list[str]:
    """The user's overrides, minus those config.json decides, then config.json's."""
    decided = {o.key_or_group for o in override_check.parse(found)}
    return [o.input_line for o in override_check.parse(user) if o.key_or_group not in decided] + found


def mismatches(composed: DictConfig, wanted: DictConfig, found: list[str]) -> list[str]:
    """One line per model key (or child option) where the composed model differs."""
    have, want = _flat(composed.model), _flat(wanted.model)
    fixes = {o.key_or_group: o.input_line.lstrip("+") for o in override_check.parse(found)}
    children = sorted({k.rsplit(".", 1)[0] for k in want if k.endswith("._target_")
                       and have.get(k) != want[k]})
    out = [f"{child} is {have.get(child + '._target_')}, config.json needs "
           f"{fixes.get(child.replace('.', '/'), want[child + '._target_'])}" for child in children]
    for key in sorted(set(have) | set(want)):
        if have.get(key) == want.get(key) or any(key.startswith(c + ".") for c in children) \
                or key.split(".")[1] in NOT_ARCHITECTURE:
            continue
        source = f" (config.json {HF_NAMES[key]})" if key in HF_NAMES else ""
        out.append(f"{key}={have.get(key)} but the checkpoint has {want.get(key)}{source}; "
                   f"fix: {fixes.get(key, f'{key}={want.get(key)}')}")
    return out


def _flat(node: DictConfig) -> dict:
    out = flatten({"model": OmegaConf.to_container(node, resolve=True, enum_to_str=True)})
    if out.get("model.head_dim") is None:  # null means d_model // num_heads: compare the value
        out["model.head_dim"] = out["model.d_model"] // out["model.num_heads"]
    return out
