"""Schema of the `model/ffn=moe` option (layers/ffn/moe.py): routing and dispatch choices.
Fields with `shape` metadata change parameter shapes (layers/registry.py)."""

import dataclasses
import enum
from typing import Any

from hydralearn.layers.ffn.swiglu_config import SwiGLUConfig
from hydralearn.layers.registry import register


class Dispatch(enum.Enum):
    capacity = "capacity"  # GShard buffers of C slots per expert; overflow is dropped
    dropless = "dropless"  # every assignment computed (ragged_dot); slow on CPU


class TopKWeights(enum.Enum):
    renormalized = "renormalized"  # top-k softmax probabilities divided by their sum (Mixtral, Qwen3)
    softmax = "softmax"  # the softmax probabilities as they are (Switch, Qwen2-MoE)


@register(group="model/ffn", name="moe")
@dataclasses.dataclass(kw_only=True)
class MoEConfig:
    _target_: str = "hydralearn.layers.ffn.moe.MoE"
    num_experts: int = dataclasses.field(default=8, metadata={"shape": True})
    top_k: int = 2
    # None: the model's ffn_dim
    expert_dim: int | None = dataclasses.field(default=None, metadata={"shape": True})
    top_k_weights: TopKWeights = TopKWeights.renormalized
    dispatch: Dispatch = Dispatch.capacity
    # Slots per expert = ceil(capacity_factor * tokens * top_k / num_experts) (capacity only).
    capacity_factor: float = 1.25
    load_balance_weight: float = 0.01  # Switch load-balancing loss (1.0 when balanced) weight
    router_z_weight: float = 0.001  # ST-MoE router z-loss weight
    # > 0: a dense SwiGLU of that size every token also takes
    shared_expert_dim: int = dataclasses.field(default=0, metadata={"shape": True})
    # MoE on every n-th layer (layers n, 2n, ...); `dense` elsewhere
    every: int = dataclasses.field(default=1, metadata={"shape": True})
    dense: Any = dataclasses.field(default_factory=SwiGLUConfig)

    @property
    def active_expert_share(self) -> float:
        """Share of the expert weights one token touches (for active-parameter FLOPs)."""
        return self.top_k / self.num_experts

    @property
    def experts_per_token(self) -> int:
        """Experts whose hidden activations one token makes (for the memory estimate)."""
        return self.top_k

    def layer_pattern(self) -> tuple[Any, ...]:
        """The ffn configs of one repeating group of layers: every-1 dense, then this."""
        return (self.dense,) * (self.every - 1) + (self,)

    def for_generation(self) -> "MoEConfig":
        """Dropless: capacity dispatch drops by place in the whole sequence (a later token can
        take an earlier token's slot), which a KV cache, seeing each token once, cannot
        reproduce; computing every assignment is the routing both paths agree on."""
        return dataclasses.replace(self, dispatch=Dispatch.dropless)

    def errors(self) -> list[str]:
        out = []
        if not 1 <= self.top_k <= self.num_experts:
            out.append(f"model.ffn.top_k={self.top_k} must be between 1 and "
                       f"model.ffn.num_experts={self.num_experts}")
        if self.every < 1:
            out.append(f"model.ffn.every={self.every} must be at least 1")
        if self.capacity_factor <= 0:
            out.append(f"model.ffn.capacity_factor={self.capacity_factor} must be positive")
        for name in ("expert_dim", "shared_expert_dim"):
            if (getattr(self, name) or 0) < 0:
                out.append(f"model.ffn.{name}={getattr(self, name)} must not be negative")
        return out
