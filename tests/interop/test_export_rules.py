"""One test per export rule: a run breaking it is refused naming the setting; the setting
that the architecture expresses passes. Composition only (no weights, no jax)."""

import pytest

from hydralearn.config import compose as compose_config
from hydralearn.errors import ConfigError
from hydralearn.interop import export_rules

MOE = ["model=mixtral_tiny", "model.ffn.dispatch=dropless"]
# rule name -> (overrides that break it, overrides that keep to it)
CASES = {
    "model/norm": (["model/norm=layer"], ["model/norm=rms"]),
    "model/ffn": (["model/ffn=gelu"], ["model/ffn=swiglu"]),
    "model/position": (["model/position=none"], ["model/position=yarn"]),
    "model/attention": ([*MOE, "model/attention=qk_norm"], ["model/attention=qk_norm"]),
    "model.ffn.top_k_weights": ([*MOE, "model.ffn.top_k_weights=softmax"], MOE),
    "model.ffn.dispatch": (["model=mixtral_tiny"],  # capacity 1.25 < 8 experts / top-2
                           ["model=mixtral_tiny", "model.ffn.capacity_factor=4"]),
    "model.ffn.every": ([*MOE, "model.ffn.every=2"], MOE),
    "model.ffn.shared_expert_dim": ([*MOE, "model.ffn.shared_expert_dim=32"], MOE),
}


def test_every_rule_has_a_case():
    assert {r.name for r in export_rules.RULES} - {"model"} == set(CASES)


@pytest.mark.parametrize("rule", CASES)
def test_rule(rule):
    broken, kept = (compose_config.load(o).model for o in CASES[rule])
    with pytest.raises(ConfigError) as e:
        export_rules.check(broken)
    assert len(e.value.errors) == 1 and f"cannot export to Hugging Face: {rule}" in e.value.errors[0]
    export_rules.check(kept)


def test_adapter_only_needs_a_peft_expressible_lora():
    with pytest.raises(ConfigError, match="--adapter-only: the run has no LoRA adapter"):
        export_rules.check(compose_config.load([]).model, adapter_only=True)
    moe = compose_config.load([*MOE, "model/adapter=lora", "model.adapter.targets=[q,gate]"]).model
    with pytest.raises(ConfigError, match="LoRA on gate has no PEFT module path"):
        export_rules.check(moe, adapter_only=True)
    export_rules.check(compose_config.load(["model/adapter=lora", "model.adapter.targets=[q,v,down]"]).model,
                       adapter_only=True)
