"""Schema of the `model/position=rope_llama3` option (layers/position/rope_llama3.py)."""

import dataclasses

from hydralearn.layers.position.rope_config import RoPEConfig
from hydralearn.layers.registry import register


@register(group="model/position", name="rope_llama3")
@dataclasses.dataclass(kw_only=True)
class Llama3RoPEConfig(RoPEConfig):
    _target_: str = "hydralearn.layers.position.rope_llama3.Llama3RoPE"
    factor: float = 8.0
    low_freq_factor: float = 1.0
    high_freq_factor: float = 4.0
    original_max_position: int = 8192  # context length the base model was trained with

    def errors(self) -> list[str]:
        out = [] if self.factor > 0 else [f"model.position.factor={self.factor} must be positive"]
        if self.high_freq_factor <= self.low_freq_factor:
            out.append(f"model.position.high_freq_factor={self.high_freq_factor} must exceed "
                       f"model.position.low_freq_factor={self.low_freq_factor}")
        return out
