"""Schema of the `model/position=rope_linear` option (layers/position/rope_linear.py)."""

import dataclasses

from hydralearn.layers.position.rope_config import RoPEConfig
from hydralearn.layers.registry import register


@register(group="model/position", name="rope_linear")
@dataclasses.dataclass(kw_only=True)
class LinearRoPEConfig(RoPEConfig):
    _target_: str = "hydralearn.layers.position.rope_linear.LinearRoPE"
    factor: float = 4.0  # context extension ratio

    def errors(self) -> list[str]:
        return [] if self.factor > 0 else [f"model.position.factor={self.factor} must be positive"]
