"""The Hugging Face layout of each layer option that has one, registered per option and keyed
by its config class (as torchtitan keeps a state-dict adapter per model). hf.py converts the
weights, hf_config.py writes config.json and export_rules.py checks a run through the entry of
the option the run chose; none of them names an option. An option with no entry here has no
Hugging Face layout, and is refused.

Keys are classes, not names: another class of the same name (a plugin's, say) is another
option, and a subclass (YaRN of RoPE) has its own entry.
"""

import dataclasses
from typing import Any, Callable

from hydralearn.layers.ffn.moe_config import MoEConfig
from hydralearn.layers.ffn.swiglu_config import SwiGLUConfig
from hydralearn.layers.position.rope_config import RoPEConfig
from hydralearn.layers.position.rope_linear_config import LinearRoPEConfig
from hydralearn.layers.position.rope_llama3_config import Llama3RoPEConfig
from hydralearn.layers.position.yarn_config import YaRNConfig

Array = Any  # numpy or jax array


@dataclasses.dataclass(frozen=True)
class Tensor:
    """One hydralearn parameter (path inside a block, or in the model) <-> HF tensor(s)."""

    path: tuple[str, ...]
    name: str  # HF name; `{e}` stands for the expert index
    to_ours: Callable[[Array], Array]
    to_hf: Callable[[Array], Array]
    experts: int = 0  # > 0: one HF tensor per expert, stacked on our axis 0


def transpose() -> dict:
    """HF linear weights are (out, in); ours (in, out)."""
    return dict(to_ours=lambda w: w.T, to_hf=lambda w: w.T)


def identity() -> dict:
    return dict(to_ours=lambda w: w, to_hf=lambda w: w)


@dataclasses.dataclass(frozen=True)
class Rule:
    name: str
    broken: Callable[[Any], bool]  # model config -> True if the export would compute otherwise
    why: str


@dataclasses.dataclass(frozen=True)
class FfnLayout:
    """How one `model/ffn` option is written in a Hugging Face checkpoint."""

    family: str  # the HF model_type it exports as (hf_config.FAMILIES)
    # Model config -> the ffn's tensors in one layer (HF names relative to `model.layers.{i}.`);
    # None where one of its settings has no place in the family's layout.
    tensors: Callable[[Any], list[Tensor] | None]
    config_json: Callable[[Any], dict]  # model config -> its config.json fields
    peft_modules: dict[str, str]  # our weight name -> PEFT module path in `model.layers.{i}.`
    rules: tuple[Rule, ...] = ()  # its settings the family computes otherwise (export_rules.py)


def _llama_mlp(model) -> list[Tensor]:
    return [Tensor(("ffn", ours), f"mlp.{ours}_proj.weight", **transpose())
            for ours in ("gate", "up", "down")]


def _mixtral_moe(model) -> list[Tensor] | None:
    if model.ffn.every != 1 or model.ffn.shared_expert_dim:
        return None
    e = model.ffn.num_experts
    return [Tensor(("ffn", "router"), "block_sparse_moe.gate.weight", **transpose())] + [
        Tensor(("ffn", ours), f"block_sparse_moe.experts.{{e}}.{hf}.weight", experts=e, **transpose())
        for ours, hf in (("gate", "w1"), ("up", "w3"), ("down", "w2"))]


MIXTRAL_RULES = (
    Rule("model.ffn.top_k_weights", lambda m: m.ffn.top_k_weights.value != "renormalized",
         "model.ffn.top_k_weights=softmax: Mixtral renormalises the top-k router weights to sum to 1"),
    Rule("model.ffn.dispatch", lambda m: m.ffn.dispatch.value == "capacity"
         and m.ffn.capacity_factor < m.ffn.num_experts / m.ffn.top_k,
         "model.ffn.dispatch=capacity drops tokens past each expert's capacity; Mixtral is dropless. "
         "Train with model.ffn.dispatch=dropless (or model.ffn.capacity_factor>=num_experts/top_k, "
         "which drops nothing)"),
    Rule("model.ffn.every", lambda m: m.ffn.every != 1,
         "model.ffn.every>1: Mixtral has experts in every layer"),
    Rule("model.ffn.shared_expert_dim", lambda m: bool(m.ffn.shared_expert_dim),
         "model.ffn.shared_expert_dim>0: Mixtral has no shared expert"),
)

FFN_LAYOUTS: dict[type, FfnLayout] = {
    SwiGLUConfig: FfnLayout(
        family="llama", tensors=_llama_mlp,
        config_json=lambda m: {"intermediate_size": m.ffn_dim, "mlp_bias": False},
        peft_modules={w: f"mlp.{w}_proj" for w in ("gate", "up", "down")}),
    MoEConfig: FfnLayout(  # the experts' weights have no PEFT module path
        family="mixtral", tensors=_mixtral_moe,
        config_json=lambda m: {"intermediate_size": m.ffn.expert_dim or m.ffn_dim,
                               "num_local_experts": m.ffn.num_experts,
                               "num_experts_per_tok": m.ffn.top_k},
        peft_modules={}, rules=MIXTRAL_RULES),
}

# `model/position` option -> HF rope_type (hf_config.ROPE_TYPES maps its fields)
POSITIONS: dict[type, str] = {RoPEConfig: "default", LinearRoPEConfig: "linear",
                              Llama3RoPEConfig: "llama3", YaRNConfig: "yarn"}
