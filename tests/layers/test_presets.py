"""Every preset builds, and its parameter count matches the published figure through a
formula written here from the architecture papers (not from hydralearn's code)."""

import importlib.util
import shutil

import pytest

from hydralearn import CONF_DIR
from hydralearn.config import compose as compose_config
from hydralearn.compose.resolve import resolve
from hydralearn.compose.build import abstract_params, count_params, inactive_expert_params
from hydralearn.layers.registry import layer_class

REPO = CONF_DIR.parent
PRESETS = sorted(p.stem for p in (CONF_DIR / "model").glob("*.yaml"))


def decoder_params(*, vocab, d, layers, heads, kv_heads, ffn, head_dim=None, tied=False,
                   experts=0, qkv_bias=False, qk_norm=False):
    """Llama-family count: embeddings (+ untied head), per layer q/k/v/o (plus q/k/v biases:
    Qwen2; plus a head_dim scale for q and one for k: Qwen3), SwiGLU (or `experts` SwiGLUs plus
    a d x experts router) and two RMSNorm scales, and the final norm."""
    head_dim = head_dim or d // heads
    attention = d * heads * head_dim * 2 + d * kv_heads * head_dim * 2
    attention += qkv_bias * (heads + 2 * kv_heads) * head_dim + qk_norm * 2 * head_dim
    mlp = 3 * d * ffn * max(experts, 1) + d * experts
    return vocab * d * (1 if tied else 2) + layers * (attention + mlp + 2 * d) + d


# name -> (architecture from the paper / model card, published parameter count)
PUBLISHED = {
    "llama2_7b": (dict(vocab=32000, d=4096, layers=32, heads=32, kv_heads=32, ffn=11008), 6_738_415_616),
    "llama2_13b": (dict(vocab=32000, d=5120, layers=40, heads=40, kv_heads=40, ffn=13824), 13_015_864_320),
    "llama2_70b": (dict(vocab=32000, d=8192, layers=80, heads=64, kv_heads=8, ffn=28672), 68_976_648_192),
    "llama3_8b": (dict(vocab=128256, d=4096, layers=32, heads=32, kv_heads=8, ffn=14336), 8_030_261_248),
    "llama3_70b": (dict(vocab=128256, d=8192, layers=80, heads=64, kv_heads=8, ffn=28672), 70_553_706_496),
    "llama3_2_1b": (dict(vocab=128256, d=2048, layers=16, heads=32, kv_heads=8, ffn=8192, tied=True),
                    1_235_814_400),
    "llama3_2_3b": (dict(vocab=128256, d=3072, layers=28, heads=24, kv_heads=8, ffn=8192, tied=True),
                    3_212_749_824),
    "mistral_7b": (dict(vocab=32000, d=4096, layers=32, heads=32, kv_heads=8, ffn=14336), 7_241_732_096),
    "mixtral_8x7b": (dict(vocab=32000, d=4096, layers=32, heads=32, kv_heads=8, ffn=14336, experts=8),
                     46_702_792_704),
    "qwen3_moe_30b_a3b": (dict(vocab=151936, d=2048, layers=48, heads=32, kv_heads=4, ffn=768,
                               head_dim=128, experts=128, qk_norm=True), 30_532_122_624),
    # Model cards: 0.49B (0.36B non-embedding), 7.61B (6.53B), 0.6B (0.44B), 8.2B (6.95B).
    "qwen2_5_0_5b": (dict(vocab=151936, d=896, layers=24, heads=14, kv_heads=2, ffn=4864, tied=True,
                          qkv_bias=True), 494_032_768),
    "qwen2_5_7b": (dict(vocab=152064, d=3584, layers=28, heads=28, kv_heads=4, ffn=18944,
                        qkv_bias=True), 7_615_616_512),
    "qwen3_0_6b": (dict(vocab=151936, d=1024, layers=28, heads=16, kv_heads=8, ffn=3072, head_dim=128,
                        tied=True, qk_norm=True), 596_049_920),
    "qwen3_8b": (dict(vocab=151936, d=4096, layers=36, heads=32, kv_heads=8, ffn=12288, head_dim=128,
                      qk_norm=True), 8_190_735_360),
}

# Published active parameters (embeddings included): Mixtral "12.9B", Qwen3 "3.3B" (its
# qk-norm's 48 x 2 x 128 scales included).
ACTIVE = {"mixtral_8x7b": (12_879_925_248, 32000 * 4096), "qwen3_moe_30b_a3b": (3_353_032_704, 151936 * 2048)}


def count(overrides):
    config = resolve(compose_config.load(overrides), device_count=1)
    _, params = abstract_params(config)
    return config, params


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_published_parameter_count(name):
    architecture, published = PUBLISHED[name]
    assert decoder_params(**architecture) == published  # the formula reproduces the paper
    _, params = count([f"model={name}"])
    assert count_params(params) == published


@pytest.mark.parametrize("name", sorted(ACTIVE))
def test_active_parameters_of_moe_presets(name):
    active, lookup = ACTIVE[name]
    config, params = count([f"model={name}"])
    assert count_params(params) - inactive_expert_params(params, config) - lookup == active - lookup


def test_tiny_presets_exist():
    assert {"llama_tiny", "mixtral_tiny", "llama3_2_tiny", "qwen2_5_tiny", "qwen3_tiny"} <= set(PRESETS)
    assert set(PUBLISHED) <= set(PRESETS)


FEATURES = {  # override -> the class it must give (ffn, position or attention)
    "model/ffn=moe": "MoE", "model/ffn=swiglu": "SwiGLU",
    "model/position=rope": "RoPE", "model/position=rope_llama3": "Llama3RoPE",
    "model/position=yarn": "YaRN", "model/position=rope_linear": "LinearRoPE",
    "model/position=none": "NoPosition",
    "model/attention=qkv_bias": "QKVBiasAttention", "model/attention=qk_norm": "QKNormAttention",
}


def expected_count(model) -> int:
    """The formula above on the composed dimensions; every-n-th-layer MoE mixes both counts."""
    attention = layer_class(model.attention).__name__
    dims = dict(vocab=model.vocab_size, d=model.d_model, heads=model.num_heads,
                kv_heads=model.num_kv_heads, head_dim=model.head_dim, tied=model.tie_embeddings,
                qkv_bias=attention == "QKVBiasAttention", qk_norm=attention == "QKNormAttention")
    if layer_class(model.ffn).__name__ != "MoE":
        return decoder_params(**dims, layers=model.num_layers, ffn=model.ffn_dim)
    moe, every = model.ffn, model.ffn.every
    moe_layers = model.num_layers // every
    with_moe = decoder_params(**dims, layers=moe_layers, ffn=moe.expert_dim or model.ffn_dim,
                              experts=moe.num_experts)
    dense = decoder_params(**dims, layers=model.num_layers - moe_layers, ffn=model.ffn_dim)
    return with_moe + dense - decoder_params(**dims, layers=0, ffn=0)  # embeddings once


@pytest.mark.slow
@pytest.mark.parametrize("feature", [*FEATURES, "model/ffn=moe model.ffn.every=2"])
def test_one_override_builds_on_every_preset(feature):
    """The promise: a feature is ONE override; it composes, validates and builds (abstractly)
    on every preset with nothing else changed, and gives the expected parameter count."""
    group = feature.split("=")[0].split("/")[1]  # ffn, position or attention
    for name in PRESETS:
        config, params = count([f"model={name}", *feature.split()])
        assert layer_class(getattr(config.model, group)).__name__ == FEATURES[feature.split()[0]], name
        assert count_params(params) == expected_count(config.model), (name, feature)


def _loc_complexity():
    spec = importlib.util.spec_from_file_location("loc_complexity", REPO / "scripts" / "loc_complexity.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


NEW_PRESET = """
defaults:
  - attention: gqa
  - position: rope
  - ffn: swiglu
  - norm: rms
  - _self_

_target_: hydralearn.layers.decoder.Decoder
vocab_size: 512
d_model: 96
num_layers: 6
num_heads: 6
num_kv_heads: 3
ffn_dim: 256
rope_theta: 10000.0
"""


@pytest.mark.slow
def test_loc_complexity_stays_zero_as_presets_are_added(tmp_path):
    """scripts/loc_complexity.py on the repository's conf/ plus one new preset: every feature
    still needs 0 lines outside its own module + YAML and 0 extra lines per preset."""
    loc = _loc_complexity()
    conf = tmp_path / "conf"
    shutil.copytree(CONF_DIR, conf)
    (conf / "model" / "new_preset.yaml").write_text(NEW_PRESET)
    rows = loc.measure(conf=conf)
    assert {r.feature for r in rows} == {"rope", "rope_llama3", "yarn", "rope_linear", "none", "moe",
                                        "lora", "qkv_bias", "qk_norm"}
    for r in rows:
        assert (r.lines_elsewhere, r.per_preset_lines, r.presets_ok) == (0, 0, len(PRESETS) + 1), r


@pytest.mark.slow
def test_loc_complexity_can_see_a_feature_that_needs_more(tmp_path):
    """A preset on which the single override is not enough (odd head_dim: no RoPE), and one
    whose body names the feature, both show in the measure."""
    loc = _loc_complexity()
    conf = tmp_path / "conf"
    shutil.copytree(CONF_DIR, conf)
    (conf / "model" / "odd_heads.yaml").write_text(NEW_PRESET + "head_dim: 15\n# yarn here\n")
    (conf / "model" / "names_yarn.yaml").write_text(NEW_PRESET + "name_hint: yarn\n")
    (row,) = loc.measure(conf=conf, features={"position": ["yarn"]})
    assert row.per_preset_lines is None and row.presets_ok == row.presets - 2
    assert row.lines_elsewhere == 1  # the body line, not the comment
