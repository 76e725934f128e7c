"""An ffn option's Hugging Face layout is its entry in interop/hf_layouts.py, keyed by its config
class: registering one is all the exporter needs (nothing else in interop names an option), and
an option without one is refused with one line, as before."""

import dataclasses

import pytest

from hydralearn.config import compose as compose_config
from hydralearn.errors import ConfigError
from hydralearn.interop import hf
from hydralearn.interop.export_rules import check, peft_modules
from hydralearn.interop.hf_config import to_hf_config
from hydralearn.interop.hf_layouts import FFN_LAYOUTS, FfnLayout, Rule, Tensor, transpose
from hydralearn.layers.ffn.gelu_config import GeluMLPConfig

UNMAPPED = ("model.ffn: hydralearn.layers.ffn.gelu.GeluMLP (every=1) has no Hugging Face layout "
            "here; use model/ffn=swiglu or model/ffn=moe with every=1 and no shared expert")
GELU_TENSORS = [Tensor(("ffn", w), f"mlp.{w}_proj.weight", **transpose()) for w in ("up", "down")]
EXACT_GELU = Rule("model.ffn.approximate", lambda m: not m.ffn.approximate,
                  "model.ffn.approximate=false: this family's GELU is the tanh approximation")


@pytest.fixture(scope="module")
def gelu():
    return compose_config.load(["model/ffn=gelu"]).model


def test_an_option_without_a_layout_is_refused_in_one_line(gelu):
    with pytest.raises(ConfigError) as e:
        hf.block_tensors(gelu)
    assert e.value.errors == [UNMAPPED]
    with pytest.raises(ConfigError, match="cannot export to Hugging Face: model/ffn"):
        check(gelu)


def test_a_registered_layout_is_all_a_new_option_needs(gelu, monkeypatch):
    monkeypatch.setitem(FFN_LAYOUTS, GeluMLPConfig, FfnLayout(
        family="llama", tensors=lambda model: GELU_TENSORS,
        config_json=lambda model: {"intermediate_size": model.ffn_dim,
                                   "hidden_act": "gelu_pytorch_tanh"},
        peft_modules={"up": "mlp.up_proj"}, rules=(EXACT_GELU,)))
    check(gelu)
    assert hf.block_tensors(gelu)[-2:] == GELU_TENSORS
    written = to_hf_config(gelu, max_position_embeddings=64)
    assert (written["model_type"], written["hidden_act"], written["intermediate_size"]) == (
        "llama", "gelu_pytorch_tanh", gelu.ffn_dim)
    assert peft_modules(gelu) == {"q": "self_attn.q_proj", "k": "self_attn.k_proj",
                                  "v": "self_attn.v_proj", "o": "self_attn.o_proj", "up": "mlp.up_proj"}
    with pytest.raises(ConfigError) as e:  # the option's own rule, from its entry
        check(dataclasses.replace(gelu, ffn=GeluMLPConfig(approximate=False)))
    assert e.value.errors == [f"cannot export to Hugging Face: {EXACT_GELU.why}"]


def test_a_class_of_the_same_name_is_another_option():
    """Dispatch is on the class: a plugin's `SwiGLUConfig` is not hydralearn's."""
    impostor = dataclasses.make_dataclass("SwiGLUConfig", [("_target_", str, "my_layers.SwiGLU")])
    with pytest.raises(ConfigError, match="cannot export to Hugging Face: model/ffn"):
        check(dataclasses.replace(compose_config.load([]).model, ffn=impostor()))
