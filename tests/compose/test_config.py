"""Composition and validation of every preset x option, and abstract parameter counts."""

import jax.numpy as jnp
import pytest
from omegaconf import OmegaConf

from hydralearn import CONF_DIR
from hydralearn.config import compose as compose_config
from hydralearn.compose.build import abstract_params, count_params, model_factory
from hydralearn.config.compose import to_container
from hydralearn.compose.resolve import resolve
from hydralearn.errors import ConfigError
from hydralearn.layers import registry

PRESETS = sorted(p.stem for p in (CONF_DIR / "model").glob("*.yaml"))
POSITIONS = sorted(p.stem for p in (CONF_DIR / "model/position").glob("*.yaml"))
FFNS = sorted(p.stem for p in (CONF_DIR / "model/ffn").glob("*.yaml"))
NORMS = sorted(p.stem for p in (CONF_DIR / "model/norm").glob("*.yaml"))


def test_option_lists_are_not_empty():
    assert {"llama_tiny", "llama2_7b", "llama2_13b", "llama2_70b", "llama3_8b"} <= set(PRESETS)
    assert {"rope", "none"} <= set(POSITIONS) and {"swiglu", "gelu"} <= set(FFNS)
    assert {"rms", "layer"} <= set(NORMS)


# Each option once on every preset (the groups are independent: one override each).
SINGLE_OVERRIDES = ([("position", o) for o in POSITIONS] + [("ffn", o) for o in FFNS]
                    + [("norm", o) for o in NORMS])


def expected_target(group: str, option: str) -> str:
    """The `_target_` an option file means: follow its defaults list to the schema it extends."""
    first = OmegaConf.load(CONF_DIR / "model" / group / f"{option}.yaml").defaults[0]
    if first.startswith("base_"):
        (config_cls,) = [c for c, place in registry.places().items()
                         if place == (f"model/{group}", first.removeprefix("base_"))]
        return registry.default_target(config_cls)
    return expected_target(group, first)


@pytest.mark.slow
@pytest.mark.parametrize("preset", PRESETS)
def test_every_option_composes_on_every_preset(preset):
    for group, option in SINGLE_OVERRIDES:
        config = compose_config.load([f"model={preset}", f"model/{group}={option}"])
        assert to_container(config.model)[group]["_target_"] == expected_target(group, option)


@pytest.mark.slow
@pytest.mark.parametrize("group, option", SINGLE_OVERRIDES)
def test_every_option_builds_and_runs_on_a_tiny_model(group, option):
    config = resolved(f"model/{group}={option}", "model.d_model=32", "model.num_heads=4",
                      "model.num_kv_heads=2", "model.num_layers=2", "model.ffn_dim=48")
    model = model_factory(config)()
    logits = model(jnp.zeros((1, 8), jnp.int32)).logits
    assert logits.shape == (1, 8, 256) and bool(jnp.all(jnp.isfinite(logits)))


def resolved(*overrides: str):
    return resolve(compose_config.load(list(overrides)), device_count=1)


def llama_param_count(*, vocab, d, layers, heads, kv_heads, ffn, head_dim=None, tied=False):
    """Published Llama architecture, counted by hand: embeddings, attention, SwiGLU, norms."""
    head_dim = head_dim or d // heads
    attention = d * heads * head_dim * 2 + d * kv_heads * head_dim * 2
    per_layer = attention + 3 * d * ffn + 2 * d
    return vocab * d * (1 if tied else 2) + layers * per_layer + d


@pytest.mark.parametrize("preset, expected, published", [
    ("llama2_7b", dict(vocab=32000, d=4096, layers=32, heads=32, kv_heads=32, ffn=11008), 6.74e9),
    ("llama2_13b", dict(vocab=32000, d=5120, layers=40, heads=40, kv_heads=40, ffn=13824), 13.0e9),
    ("llama2_70b", dict(vocab=32000, d=8192, layers=80, heads=64, kv_heads=8, ffn=28672), 69.0e9),
    ("llama3_8b", dict(vocab=128256, d=4096, layers=32, heads=32, kv_heads=8, ffn=14336), 8.03e9),
])
def test_abstract_build_matches_published_parameter_count(preset, expected, published):
    _, params = abstract_params(resolved(f"model={preset}"))  # nnx.eval_shape: no allocation
    count = count_params(params)
    assert count == llama_param_count(**expected)
    assert abs(count - published) / published < 0.01


def test_llama2_70b_exact_count():
    # 68,976,648,192: the figure Meta's checkpoint holds (also measured in JAX-FLAX-NOTES).
    _, params = abstract_params(resolved("model=llama2_70b"))
    assert count_params(params) == 68_976_648_192


def test_gelu_changes_parameter_count_by_one_matrix_per_layer():
    swiglu = count_params(abstract_params(resolved("model=llama2_7b"))[1])
    gelu = count_params(abstract_params(resolved("model=llama2_7b", "model/ffn=gelu"))[1])
    assert swiglu - gelu == 32 * 4096 * 11008


def test_hydra_append_and_delete_overrides():
    cfg = compose_config.compose(["+trainer_note=hello", "hardware=gpu_h100",
                                  "~hardware.xla_flags.xla_gpu_enable_pipelined_all_reduce"])
    assert cfg.trainer_note == "hello"
    assert "xla_gpu_enable_pipelined_all_reduce" not in cfg.hardware.xla_flags
    assert "xla_gpu_enable_pipelined_all_gather" in cfg.hardware.xla_flags
    with pytest.raises(ConfigError, match="unknown key trainer_note"):
        compose_config.load(["+trainer_note=hello"])


# Bad command lines and their one line (tests/cli/test_error_paths.py combines them with more).
USER_ERRORS = [
    (["model.d_modle=3"], r"unknown key model.d_modle; did you mean 'model.d_model'\?"),
    (["model=llama2_7"], r"model=llama2_7: no such option; did you mean 'llama2_7b'\?.*valid options: .*llama2_70b"),
    (["model.d_model=big"], r"model.d_model: expected int, got 'big' \(str\)"),
    (["remat.policy=sometimes"], r"remat.policy='sometimes' is not valid; choose one of: auto, none, full"),
    (["model.rope_theta=[1]"], r"model.rope_theta: expected float"),
    (["model._target_=subprocess.call"], r"_target_ 'subprocess.call' is not allowed"),
    (["~model.nothing"], r"unknown key model.nothing"),
    (["~sharding.rules.head_dim"], r"cannot delete sharding.rules.head_dim: Hydra 1.3 cannot delete a key whose value is null"),
    (["experiment=tiny_cpu8"], r"'experiment' is not in the defaults list; to add it use \+experiment=tiny_cpu8"),
    (["+hydra.callbacks.x._target_=tempfile.mkdtemp"], r"hydra.callbacks.x: _target_ 'tempfile.mkdtemp' is not allowed"),
    (["~model.head_dim"], r"cannot delete model.head_dim: every config has it \(a field of DecoderConfig\)"),
    (["model.tie_embeddings=maybe"], r"model.tie_embeddings: expected bool, got 'maybe'"),
    (["name=x", "trainer.stepz=3"], r"unknown key trainer.stepz; did you mean 'trainer.steps'\?"),
    (["trainer.steps=[1"], r"cannot parse override: no viable alternative at input '\[1'"),
    (["hydra.sweeper.params={trainer.steps:'0,2'}"],
     r"hydra.sweeper.params: Hydra 1.3 cannot set hydra.sweeper.params on the command line"),
    (["+hydra.callbacks.s._target_=hydralearn.cli.sweep.SweepSummary", "+hydra.callbacks.s.every=2"],
     r"hydra.callbacks.s: hydralearn.cli.sweep.SweepSummary: got an unexpected keyword argument 'every'"),
]


@pytest.mark.parametrize("overrides, message", USER_ERRORS)
def test_user_errors(overrides, message):
    with pytest.raises(ConfigError, match=message):
        compose_config.load(overrides)


@pytest.mark.parametrize("overrides", [["+experiment=typo"], ["+experiment=typo", "trainer.steps=3"]])
def test_an_experiment_files_error_is_one_line(tmp_path, overrides):
    """A bad key in a user's experiment file is named (Hydra chains a file's error as the
    context, not the cause), with or without key overrides beside it."""
    (tmp_path / "experiment").mkdir()
    (tmp_path / "experiment" / "typo.yaml").write_text("# @package _global_\nmodel:\n  d_modle: 3\n")
    with pytest.raises(ConfigError) as info:
        compose_config.load(overrides, compose_config.Location(config_dir=str(tmp_path)))
    assert info.value.errors == ["unknown key model.d_modle; did you mean 'model.d_model'?"]


def test_all_errors_reported_at_once():
    with pytest.raises(ConfigError) as info:
        compose_config.load(["+model.hiden=1", "trainer.steps=many", "optim.lr=fast"])
    assert len(info.value.errors) == 3, info.value.errors


def test_cross_field_rules_reported_together():
    with pytest.raises(ConfigError) as info:
        compose_config.load(["model.d_model=250", "model.num_heads=6", "model.num_kv_heads=4"])
    text = "\n".join(info.value.errors)
    assert "model.d_model=250 must be divisible by model.num_heads=6" in text
    assert "model.num_heads=6 must be divisible by model.num_kv_heads=4" in text


def test_rope_needs_even_head_dim_but_nope_does_not():
    odd = ["model.d_model=36", "model.num_heads=4", "model.num_kv_heads=4"]  # head_dim 9
    with pytest.raises(ConfigError, match="head_dim=9 must be even"):
        compose_config.load(odd)
    assert compose_config.load([*odd, "model/position=none"]).model.resolved_head_dim == 9


def test_impossible_mesh_names_both_numbers():
    config = compose_config.load(["mesh.axes.fsdp=4"])
    with pytest.raises(ConfigError, match="multiply to 4 but there are 1 devices"):
        resolve(config, device_count=1)


def test_allowlist_accepts_only_registered_configs():
    import dataclasses

    with pytest.raises(registry.TargetError):
        registry.config_class("collections.OrderedDict")

    @registry.register(group="model/norm", name="my_norm_for_test")
    @dataclasses.dataclass(kw_only=True)
    class MyNormConfig:
        _target_: str = "my_package.MyNorm"
        eps: float = 1e-6

    assert registry.config_class("my_package.MyNorm") is MyNormConfig
    with pytest.raises(TypeError, match="needs a `_target_"):
        registry.register(group="model/norm", name="x")(dataclasses.dataclass(type("NoTarget", (), {})))


def test_defaults_live_in_the_schema_once():
    """No YAML option repeats a value its schema already has (a default lives in one place)."""
    from hydralearn.config.store import register_schemas
    from hydra.core.config_store import ConfigStore

    register_schemas()
    store = ConfigStore.instance()
    repeated = []
    for path in CONF_DIR.rglob("*.yaml"):
        body = OmegaConf.load(path)
        if "defaults" not in body or not str(body.defaults[0]).startswith("base_"):
            continue
        group = path.parent.relative_to(CONF_DIR)
        schema = OmegaConf.to_container(store.load(str(group / f"{body.defaults[0]}.yaml")).node,
                                        resolve=False, enum_to_str=True)
        for key, value in OmegaConf.to_container(body, resolve=False).items():
            if key != "defaults" and not isinstance(value, dict) and schema.get(key, "???") == value:
                repeated.append(f"{path.relative_to(CONF_DIR)}: {key}")
    assert not repeated, repeated
