"""Schema of the `model/ffn=gelu` option (layers/ffn/gelu.py)."""

import dataclasses

from hydralearn.layers.registry import register


@register(group="model/ffn", name="gelu")
@dataclasses.dataclass(kw_only=True)
class GeluMLPConfig:
    _target_: str = "hydralearn.layers.ffn.gelu.GeluMLP"
    approximate: bool = True  # tanh approximation, as GPT-2
