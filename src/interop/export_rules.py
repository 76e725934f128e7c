"""What a Hugging Face architecture cannot express: one rule per hydralearn setting that would
be written as a different function. `hydralearn-export` refuses a run that breaks any rule,
naming each, before any weight is read; a setting listed nowhere here exports exactly
(tests/interop/test_export_rules.py holds one test per rule). The rules of one ffn option's
settings live with its layout (interop/hf_layouts.py).
"""

from hydralearn.errors import ConfigError
from hydralearn.interop.hf_layouts import FFN_LAYOUTS, POSITIONS, Rule, hf_family
from hydralearn.layers.adapter.lora_config import LoRAConfig
from hydralearn.layers.decoder_config import DecoderConfig
from hydralearn.layers.norm_config import RMSNormConfig

MODEL_RULES = (
    Rule("model", lambda m: type(m) is not DecoderConfig,
         "model: only hydralearn's decoder has a Hugging Face layout"),
    Rule("model/norm", lambda m: type(m.norm) is not RMSNormConfig,
         "model/norm: Llama and Mixtral use RMSNorm (no bias); a run with another norm computes "
         "something else there"),
    Rule("model/ffn", lambda m: type(m.ffn) not in FFN_LAYOUTS,
         "model/ffn: Llama and Mixtral use SwiGLU (dense or experts); this ffn has no equivalent"),
    Rule("model/position", lambda m: type(m.position) not in POSITIONS,
         "model/position: Llama's RoPE variants are default, linear, llama3 and yarn"),
    Rule("model/attention", lambda m: type(m.ffn) in FFN_LAYOUTS and hf_family(m) is None,
         "model/attention: Llama and Mixtral use gqa, Qwen2 qkv_bias and Qwen3 qk_norm (dense ffn "
         "only: Qwen2-MoE and Qwen3-MoE layouts are not modelled); this attention has no equivalent"),
)
RULES = MODEL_RULES + tuple(rule for layout in FFN_LAYOUTS.values() for rule in layout.rules)

# Our attention weight name -> PEFT module path inside `model.layers.{i}.`
ATTENTION_PEFT_MODULES = {w: f"self_attn.{w}_proj" for w in ("q", "k", "v", "o")}


def check(model, *, adapter_only: bool = False) -> None:
    """ConfigError naming every rule the model breaks."""
    layout = FFN_LAYOUTS.get(type(model.ffn))
    rules = MODEL_RULES + (layout.rules if layout else ())
    errors = [f"cannot export to Hugging Face: {r.why}" for r in rules if r.broken(model)]
    if adapter_only:
        errors += adapter_errors(model)
    if errors:
        raise ConfigError(errors)


def peft_modules(model) -> dict[str, str]:
    """Our weight name -> PEFT module path inside `model.layers.{i}.`, for the weights of this
    model that have one."""
    layout = FFN_LAYOUTS.get(type(model.ffn))
    return ATTENTION_PEFT_MODULES | (layout.peft_modules if layout else {})


def adapter_errors(model) -> list[str]:
    if type(getattr(model, "adapter", None)) is not LoRAConfig:
        return ["--adapter-only: the run has no LoRA adapter (model/adapter=lora)"]
    allowed = tuple(peft_modules(model))
    odd = [t for t in model.adapter.targets if t not in allowed]
    return [f"--adapter-only: LoRA on {', '.join(odd)} has no PEFT module path for this model "
            f"(supported: {', '.join(allowed)}); export merged weights instead"] if odd else []
