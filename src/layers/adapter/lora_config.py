"""Schema of the `model/adapter=lora` option (layers/adapter/lora.py)."""

import dataclasses

from hydralearn.layers.registry import register


@register(group="model/adapter", name="lora")
@dataclasses.dataclass(kw_only=True)
class LoRAConfig:
    _target_: str = "hydralearn.layers.adapter.lora.LoRA"
    rank: int = 8
    alpha: float = 16.0  # the update is scaled by alpha / rank (Hu et al. 2021; PEFT's lora_alpha)
    # Weights to adapt, by the attribute name the layers give them: attention q, k, v, o;
    # ffn gate, up, down (SwiGLU, and each expert of an MoE); router; head.
    targets: list[str] = dataclasses.field(default_factory=lambda: ["q", "k", "v", "o"])

    def errors(self) -> list[str]:
        out = [f"model.adapter.{n}={getattr(self, n)} must be positive"
               for n in ("rank", "alpha") if getattr(self, n) <= 0]
        if not self.targets:
            out.append("model.adapter.targets is empty; name the weights to adapt, e.g. [q,k,v,o]")
        return out
