"""Schema of the `model/position=rope` option (layers/position/rope.py); the RoPE variants'
schemas extend it."""

import dataclasses

from hydralearn.layers.registry import register


@register(group="model/position", name="rope")
@dataclasses.dataclass(kw_only=True)
class RoPEConfig:
    _target_: str = "hydralearn.layers.position.rope.RoPE"

    @staticmethod
    def head_dim_errors(head_dim: int) -> list[str]:
        return [f"head_dim={head_dim} must be even for rotary position embedding"] if head_dim % 2 else []
