"""Schema of the `model/position=yarn` option (layers/position/yarn.py)."""

import dataclasses

from hydralearn.layers.position.rope_config import RoPEConfig
from hydralearn.layers.registry import register


@register(group="model/position", name="yarn")
@dataclasses.dataclass(kw_only=True)
class YaRNConfig(RoPEConfig):
    _target_: str = "hydralearn.layers.position.yarn.YaRN"
    factor: float = 4.0
    original_max_position: int = 4096  # context length the base model was trained with
    beta_fast: float = 32.0
    beta_slow: float = 1.0

    def errors(self) -> list[str]:
        out = [] if self.factor >= 1 else [f"model.position.factor={self.factor} must be >= 1"]
        if self.beta_fast <= self.beta_slow:
            out.append(f"model.position.beta_fast={self.beta_fast} must exceed "
                       f"model.position.beta_slow={self.beta_slow}")
        return out
