"""Schemas of the `model/norm` options (layers/norm.py)."""

import dataclasses

from hydralearn.layers.registry import register


@register(group="model/norm", name="rms")
@dataclasses.dataclass(kw_only=True)
class RMSNormConfig:
    _target_: str = "hydralearn.layers.norm.RMSNorm"
    eps: float = 1e-5


@register(group="model/norm", name="layer")
@dataclasses.dataclass(kw_only=True)
class LayerNormConfig:
    _target_: str = "hydralearn.layers.norm.LayerNorm"
    eps: float = 1e-5
