"""Qwen2/2.5 and Qwen3 checkpoints against transformers itself: one tiny random model of each
family, made and saved by transformers (float32, CPU), is imported and must give transformers'
logits; exported, it must load in transformers and give them again; greedy generation must
give transformers' tokens. Then config.json is rewritten field by field (removed, or given an
unusual value): each variant must either MATCH what transformers computes from the same
directory, or be refused by hydralearn with one line naming the field."""

import json
import re
import shutil

import jax.numpy as jnp
import numpy as np
import pytest
import torch
from flax import nnx
from safetensors.numpy import load_file
from transformers import AutoModelForCausalLM, Qwen2Config, Qwen2ForCausalLM, Qwen3Config, Qwen3ForCausalLM

from hydralearn.compose.build import abstract_params
from hydralearn.errors import ConfigError
from hydralearn.interop import hf
from hydralearn.layers.registry import layer_class

# vocab 256: the default data config's byte tokenizer must fit the model. rms_norm_eps and
# rope_theta differ from transformers' defaults, so that dropping them must matter.
SMALL = dict(vocab_size=256, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
             num_attention_heads=4, num_key_value_heads=2, initializer_range=0.1,
             rms_norm_eps=1e-5, rope_theta=1000.0)
FAMILIES = {
    # Qwen2.5: biases on q, k, v; tied embeddings (the small Qwen2.5 models are tied)
    "qwen2": lambda: Qwen2ForCausalLM(Qwen2Config(**SMALL, tie_word_embeddings=True)),
    # Qwen3: qk-norm; head_dim 32, not hidden_size / heads = 16
    "qwen3": lambda: Qwen3ForCausalLM(Qwen3Config(**SMALL, head_dim=32)),
}
TOKENS = np.random.default_rng(0).integers(0, 256, size=(2, 24))
PROMPTS = [list(np.random.default_rng(n).integers(0, 256, n)) for n in (3, 17)]
NEW = 32


def _randomise(model: torch.nn.Module) -> None:
    """transformers initialises biases to 0 and norm weights to 1: give them values that show."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("bias") or "norm" in name:
                p.copy_(torch.randn_like(p) * 0.5 + (1.0 if "norm" in name else 0.0))


def transformers_logits(directory) -> np.ndarray:
    model = AutoModelForCausalLM.from_pretrained(directory, attn_implementation="eager").eval()
    with torch.no_grad():
        return model(torch.tensor(TOKENS)).logits.numpy()


def hydralearn_logits(loaded: hf.Loaded) -> np.ndarray:
    graphdef, _ = abstract_params(loaded.config)
    return np.asarray(nnx.merge(graphdef, loaded.params)(jnp.asarray(TOKENS)).logits)


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """family -> (directory saved by transformers, its float32 logits, its greedy tokens)."""
    out = {}
    for family, make in FAMILIES.items():
        torch.manual_seed(0)
        model = make().eval()
        _randomise(model)
        model.config._attn_implementation = "eager"
        directory = tmp_path_factory.mktemp(family)
        model.save_pretrained(directory)
        model.generation_config.eos_token_id = None  # exactly NEW tokens, as asked of ours
        with torch.no_grad():
            logits = model(torch.tensor(TOKENS)).logits.numpy()
            tokens = [model.generate(torch.tensor([p]), do_sample=False, max_new_tokens=NEW)[0, len(p):]
                      .tolist() for p in PROMPTS]
        out[family] = (directory, logits, tokens)
    return out


@pytest.fixture(scope="module")
def imported(checkpoints):
    return {family: hf.load(checkpoints[family][0]) for family in FAMILIES}


@pytest.mark.parametrize("family", FAMILIES)
def test_import_gives_transformers_logits(family, checkpoints, imported):
    _, expected, _ = checkpoints[family]
    diff = float(np.max(np.abs(hydralearn_logits(imported[family]) - expected)))
    print(f"\n{family} import: logits max |hydralearn - transformers| = {diff:.2e} "
          f"(logits max |.| = {np.max(np.abs(expected)):.2f})")
    assert diff < 2e-5


def test_imported_config_picks_the_options(imported):
    qwen2, qwen3 = imported["qwen2"].config.model, imported["qwen3"].config.model
    assert layer_class(qwen2.attention).__name__ == "QKVBiasAttention" and qwen2.tie_embeddings
    assert layer_class(qwen3.attention).__name__ == "QKNormAttention"
    assert (qwen3.resolved_head_dim, qwen3.norm.eps, qwen3.rope_theta) == (32, 1e-5, 1000.0)


@pytest.mark.parametrize("family", ["qwen2", pytest.param("qwen3", marks=pytest.mark.slow)])
def test_export_loads_in_transformers_with_the_same_logits(family, checkpoints, imported, tmp_path):
    directory, expected, _ = checkpoints[family]
    hf.export(imported[family].params, imported[family].config, tmp_path)
    original, exported = load_file(directory / "model.safetensors"), load_file(tmp_path / "model.safetensors")
    assert sorted(original) == sorted(exported)
    for name in original:
        assert np.array_equal(original[name], exported[name]), name
    assert json.loads((tmp_path / "config.json").read_text())["model_type"] == family
    got = transformers_logits(tmp_path)  # transformers reads the exported config.json the same way
    print(f"\n{family} export: logits max |diff| = {np.max(np.abs(got - expected)):.2e}")
    np.testing.assert_array_equal(got, expected)


@pytest.mark.slow
@pytest.mark.parametrize("family", FAMILIES)
def test_greedy_generation_equals_transformers(family, checkpoints):
    """hydralearn-generate's generator, loading the directory as the CLI does."""
    from hydralearn.cli.target import load
    from hydralearn.runtime.generate import Generator
    from hydralearn.runtime.sampling import Sampling

    directory, _, expected = checkpoints[family]
    model = load(str(directory))
    generator = Generator(model.config, model.params, mesh=model.mesh)
    got = generator.generate([[int(t) for t in p] for p in PROMPTS], max_new_tokens=NEW, sampling=Sampling())
    assert got == expected


# The sweep: (family, config.json edit, expected). An edit maps a field to a value, or to
# DROP (the field is removed). Expected: MATCH (transformers and hydralearn read the
# directory alike: the same logits) or a pattern the one-line refusal must match.
DROP, MATCH = object(), "MATCH"
YARN = {"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 8, "rope_theta": 1000.0}
SWEEP = [
    ("qwen2", {"rms_norm_eps": DROP}, MATCH),  # transformers' default 1e-6
    ("qwen2", {"rope_parameters": DROP}, MATCH),  # theta 10000
    ("qwen2", {"sliding_window": 4}, MATCH),  # ignored without use_sliding_window
    ("qwen2", {"use_sliding_window": True, "sliding_window": 4, "max_window_layers": 2}, MATCH),  # no layer slides
    ("qwen2", {"rope_parameters": YARN}, MATCH),
    ("qwen2", {"rope_parameters": DROP, "rope_scaling": {"type": "linear", "factor": 3.0}}, MATCH),
    ("qwen2", {"rope_parameters": {k: v for k, v in YARN.items() if k != "original_max_position_embeddings"},
               "max_position_embeddings": 12}, MATCH),
    ("qwen3", {"attention_bias": DROP}, MATCH),
    ("qwen3", {"rms_norm_eps": DROP, "num_key_value_heads": 2}, MATCH),
    ("qwen3", {"max_position_embeddings": DROP, "initializer_range": 3.0, "dtype": DROP}, MATCH),
    # layer_types as saved (all full_attention) wins over use_sliding_window, as in transformers
    ("qwen2", {"use_sliding_window": True, "sliding_window": 4, "max_window_layers": 1}, MATCH),
    ("qwen2", {"use_sliding_window": True, "sliding_window": 4, "max_window_layers": 1, "layer_types": DROP},
     r"use_sliding_window=true: layers 1\.\.1 attend within 4 tokens"),
    ("qwen3", {"use_sliding_window": True, "sliding_window": 8, "max_window_layers": 0, "layer_types": DROP},
     "use_sliding_window=true"),
    ("qwen2", {"layer_types": ["full_attention", "chunked_attention"]}, "layer_types"),
    ("qwen2", {"layer_types": ["full_attention", "sliding_attention"]}, "sliding_attention layers but no window"),
    ("qwen3", {"attention_bias": True}, "attention_bias=true"),
    ("qwen2", {"attention_bias": False}, "field 'attention_bias' is not known .* model_type 'qwen2'"),
    ("qwen2", {"mlp_bias": False}, "field 'mlp_bias' is not known"),
    ("qwen2", {"hidden_act": "gelu"}, "hidden_act='gelu'"),
    ("qwen2", {"attention_dropout": 0.1}, "attention_dropout=0.1"),
    ("qwen2", {"num_key_value_heads": DROP}, "num_kv_heads=32"),  # transformers' default 32 kv heads
    ("qwen3", {"head_dim": DROP}, r"q_proj.weight: checkpoint shape"),  # default 128
    ("qwen3", {"head_dim": None}, "head_dim=null"),
    ("qwen2", {"tie_word_embeddings": DROP}, "no tensor lm_head.weight"),  # untied by default
    ("qwen2", {"rope_parameters": {**YARN, "truncate": False}}, "truncate=False"),
    ("qwen2", {"rope_parameters": {**YARN, "attention_factor": 1.5}}, "attention_factor"),
    ("qwen2", {"rope_parameters": {"rope_type": "linear", "factor": 2.0, "low": 1}}, "key 'low' is not known"),
    ("qwen2", {"rope_parameters": {"rope_type": "dynamic", "factor": 2.0}}, "rope_type='dynamic'"),
    ("qwen2", {"rope_parameters": {"rope_type": "default", "partial_rotary_factor": 0.5}}, "partial_rotary_factor"),
    ("qwen3", {"vocab_size": DROP}, r"checkpoint shape"),  # default 151936
]
CHEAP = {0, 11, 15, 17, 20, 24}  # run in the default tier; the rest are slow


def _variant(source, edit: dict, directory):
    config = json.loads((source / "config.json").read_text())
    for key, value in edit.items():
        if value is DROP:
            config.pop(key, None)
        else:
            config[key] = value
    shutil.copy(source / "model.safetensors", directory / "model.safetensors")
    (directory / "config.json").write_text(json.dumps(config))
    return directory


@pytest.mark.parametrize("case", [pytest.param(i, id=f"{f}-{'+'.join(e)}", marks=() if i in CHEAP else
                                               pytest.mark.slow) for i, (f, e, _) in enumerate(SWEEP)])
def test_config_json_fields_match_transformers_or_are_refused(case, checkpoints, tmp_path):
    family, edit, expected = SWEEP[case]
    directory = _variant(checkpoints[family][0], edit, tmp_path)
    if expected is MATCH:
        want = transformers_logits(directory)
        diff = float(np.max(np.abs(hydralearn_logits(hf.load(directory)) - want)))
        assert diff < 2e-5, diff
        # and the edit mattered or was neutral as transformers says: compared with the original
        print(f"\n{family} {edit}: MATCH, max |diff| {diff:.1e}, changed logits by "
              f"{np.max(np.abs(want - checkpoints[family][1])):.2e}")
    else:
        with pytest.raises(ConfigError) as refused:
            hf.load(directory)
        lines = str(refused.value).splitlines()
        print(f"\n{family} {edit}: refused: {lines[0]}")
        assert any(re.search(expected, line) for line in lines), lines
