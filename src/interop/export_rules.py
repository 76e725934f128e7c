"""What a Hugging Face architecture cannot express: one rule per hydralearn setting that would
be written as a different function. `hydralearn-export` refuses a run that breaks any rule,
naming each, before any weight is read; a setting listed nowhere here exports exactly
(tests/interop/test_export_rules.py holds one test per rule).
"""

import dataclasses
from typing import Any, Callable

from hydralearn.errors import ConfigError
from hydralearn.interop.hf_config import POSITION_CONFIGS


@dataclasses.dataclass(frozen=True)
class Rule:
    name: str
    broken: Callable[[Any], bool]  # model config -> True if the export would compute otherwise
    why: str


def _kind(node) -> str:
    return type(node).__name__


def _moe(model) -> bool:
    return _kind(model.ffn) == "MoEConfig"


RULES = (
    Rule("model", lambda m: _kind(m) != "DecoderConfig",
         "model: only hydralearn's decoder has a Hugging Face layout"),
    Rule("model/norm", lambda m: _kind(m.norm) != "RMSNormConfig",
         "model/norm: Llama and Mixtral use RMSNorm (no bias); a run with another norm computes "
         "something else there"),
    Rule("model/ffn", lambda m: _kind(m.ffn) not in ("SwiGLUConfig", "MoEConfig"),
         "model/ffn: Llama and Mixtral use SwiGLU (dense or experts); this ffn has no equivalent"),
    Rule("model/position", lambda m: _kind(m.position) not in POSITION_CONFIGS,
         "model/position: Llama's RoPE variants are default, linear, llama3 and yarn"),
    Rule("model.ffn.top_k_weights", lambda m: _moe(m) and m.ffn.top_k_weights.value != "renormalized",
         "model.ffn.top_k_weights=softmax: Mixtral renormalises the top-k router weights to sum to 1"),
    Rule("model.ffn.dispatch", lambda m: _moe(m) and m.ffn.dispatch.value == "capacity"
         and m.ffn.capacity_factor < m.ffn.num_experts / m.ffn.top_k,
         "model.ffn.dispatch=capacity drops tokens past each expert's capacity; Mixtral is dropless. "
         "Train with model.ffn.dispatch=dropless (or model.ffn.capacity_factor>=num_experts/top_k, "
         "which drops nothing)"),
    Rule("model.ffn.every", lambda m: _moe(m) and m.ffn.every != 1,
         "model.ffn.every>1: Mixtral has experts in every layer"),
    Rule("model.ffn.shared_expert_dim", lambda m: _moe(m) and bool(m.ffn.shared_expert_dim),
         "model.ffn.shared_expert_dim>0: Mixtral has no shared expert"),
)

# Our weight name -> PEFT module path inside `model.layers.{i}.` (dense models)
PEFT_MODULES = {"q": "self_attn.q_proj", "k": "self_attn.k_proj", "v": "self_attn.v_proj",
                "o": "self_attn.o_proj", "gate": "mlp.gate_proj", "up": "mlp.up_proj",
                "down": "mlp.down_proj"}


def check(model, *, adapter_only: bool = False) -> None:
    """ConfigError naming every rule the model breaks."""
    errors = [f"cannot export to Hugging Face: {r.why}" for r in RULES if r.broken(model)]
    if adapter_only:
        errors += adapter_errors(model)
    if errors:
        raise ConfigError(errors)


def adapter_errors(model) -> list[str]:
    adapter = getattr(model, "adapter", None)
    if _kind(adapter) != "LoRAConfig":
        return ["--adapter-only: the run has no LoRA adapter (model/adapter=lora)"]
    allowed = ("q", "k", "v", "o") if _moe(model) else tuple(PEFT_MODULES)
    odd = [t for t in adapter.targets if t not in allowed]
    return [f"--adapter-only: LoRA on {', '.join(odd)} has no PEFT module path for this model "
            f"(supported: {', '.join(allowed)}); export merged weights instead"] if odd else []
