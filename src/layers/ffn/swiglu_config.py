"""Schema of the `model/ffn=swiglu` option (layers/ffn/swiglu.py)."""

import dataclasses

from hydralearn.layers.registry import register


@register(group="model/ffn", name="swiglu")
@dataclasses.dataclass(kw_only=True)
class SwiGLUConfig:
    _target_: str = "hydralearn.layers.ffn.swiglu.SwiGLU"
