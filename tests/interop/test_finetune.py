"""Fine-tuning from the command line's own code paths: `init.hf` (checked or adopted config,
weights into the run's shardings), `model/adapter=lora`, and `hydralearn-export` back to
transformers and PEFT. References are transformers' and peft's own models, made here."""

import dataclasses
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from flax import nnx
from peft import PeftModel
from safetensors.numpy import save_file
from transformers import (AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM, MistralConfig,
                          MistralForCausalLM, MixtralConfig, MixtralForCausalLM)

from hydralearn.cli import export as export_cli
from hydralearn.cli import init_hf
from hydralearn.runtime.run import initial_start
from hydralearn.config import compose as compose_config
from hydralearn.compose.build import build
from hydralearn.config.compose import to_container
from hydralearn.compose.resolve import resolve
from hydralearn.config.schema import SaveMode
from hydralearn.config.validate import validate
from hydralearn.errors import ConfigError
from hydralearn.interop import hf
from hydralearn.runtime.checkpoint import Checkpointer, abstract_state

SMALL = dict(vocab_size=256, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
             num_attention_heads=4, num_key_value_heads=2, initializer_range=0.1, rms_norm_eps=1e-5)
TOKENS = np.random.default_rng(0).integers(0, 256, size=(2, 24))
RUN = ["data=synthetic", "data.seq_len=24", "data.batch_size=2", "schedule.warmup_steps=0"]
LORA = ["model/adapter=lora", "model.adapter.targets=[q,k,v,o,gate,up,down]"]


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """family -> (directory saved by transformers, its float32 logits on TOKENS)."""
    makers = {
        "llama": lambda: LlamaForCausalLM(LlamaConfig(**SMALL)),
        "mixtral": lambda: MixtralForCausalLM(MixtralConfig(**SMALL, num_local_experts=4,
                                                            num_experts_per_tok=2)),
        "mistral_window": lambda: MistralForCausalLM(MistralConfig(**SMALL, sliding_window=8)),
    }
    out = {}
    for family, make in makers.items():
        torch.manual_seed(0)
        model = make().eval()
        directory = tmp_path_factory.mktemp(family)
        model.save_pretrained(directory, max_shard_size="100KB")  # sharded, with an index file
        with torch.no_grad():
            out[family] = (directory, model(torch.tensor(TOKENS)).logits.numpy())
    return out


def run_config(*overrides, device_count=1):
    """As hydralearn-train composes a run: init.hf checked or adopted, then resolved."""
    cfg = init_hf.composed(list(overrides), compose_config.compose)
    return resolve(validate(cfg), device_count=device_count)


def started(config, devices):
    program = build(config, devices=devices)
    return program, initial_start(config, program).make()


@pytest.mark.parametrize("family", ["llama", "mixtral"])
def test_init_hf_logits_equal_transformers(family, checkpoints, one_device):
    directory, expected = checkpoints[family]
    assert len(list(directory.glob("*.safetensors"))) > 1 and (directory / "model.safetensors.index.json").exists()
    config = run_config(f"init.hf={directory}", "init.hf_config=adopt", *RUN)
    assert config.name == directory.name  # not the borrowed family preset's name
    program, state = started(config, one_device)
    diff = float(np.max(np.abs(np.asarray(program.apply(state.params, jnp.asarray(TOKENS)).logits) - expected)))
    print(f"\n{family}: init.hf logits max |hydralearn - transformers| = {diff:.2e}")
    assert diff < 2e-5


def test_mismatches_are_listed_with_their_fix(checkpoints):
    directory = checkpoints["llama"][0]
    with pytest.raises(ConfigError) as e:
        run_config("model=llama3_2_1b", f"init.hf={directory}")
    text = "\n".join(e.value.errors)
    for line in ("model.d_model=2048 but the checkpoint has 64 (config.json hidden_size); fix: model.d_model=64",
                 "model.num_layers=16 but the checkpoint has 2", "model.tie_embeddings=True but",
                 "model.position is hydralearn.layers.position.rope_llama3.Llama3RoPE, config.json needs "
                 "model/position=rope", "init.hf_config=adopt"):
        assert line in text
    # The listed fix composes to a config that passes the check.
    fix = e.value.errors[-1].split("fix all with: ")[1].split(";")[0].split()
    run_config("model=llama3_2_1b", f"init.hf={directory}", *fix)


def test_unsupported_features_are_refused_by_name(checkpoints, tmp_path):
    window = checkpoints["mistral_window"][0]
    with pytest.raises(ConfigError, match="sliding_window=8: sliding-window attention is not modelled"):
        run_config(f"init.hf={window}", "init.hf_config=adopt", *RUN)  # seq_len 24 > window 8
    hf_json = json.loads((checkpoints["llama"][0] / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps(hf_json | {"attn_logit_softcapping": 30.0,
                                                                "attention_bias": True}))
    with pytest.raises(ConfigError) as e:
        run_config(f"init.hf={tmp_path}", "init.hf_config=adopt")
    assert any("'attn_logit_softcapping' is not known" in x for x in e.value.errors)
    assert any("attention_bias=true" in x for x in e.value.errors)


def test_unused_tensor_refuses_the_import(checkpoints, tmp_path, one_device):
    directory = checkpoints["llama"][0]
    for f in directory.iterdir():
        (tmp_path / f.name).write_bytes(f.read_bytes())
    save_file({"model.layers.0.self_attn.q_norm.weight": np.ones(16, np.float32)},
              str(tmp_path / "extra.safetensors"), metadata={"format": "pt"})
    config = run_config(f"init.hf={tmp_path}", "init.hf_config=adopt", *RUN)
    with pytest.raises(ConfigError, match=r"tensor model.layers.0.self_attn.q_norm.weight has no place"):
        hf.load_params(tmp_path, config)


@pytest.fixture(scope="module")
def lora_run(checkpoints, one_device, tmp_path_factory):
    """Llama from init.hf with LoRA: (config, program, parameters at init, state after 6
    steps, losses, checkpointer holding step 3)."""
    directory = checkpoints["llama"][0]
    config = run_config(f"init.hf={directory}", "init.hf_config=adopt", "optim.lr=0.01", *RUN, *LORA)
    program, first = started(config, one_device)
    start = jax.tree.map(np.asarray, nnx.to_pure_dict(first.params))
    sync = dataclasses.replace(config.checkpoint, mode=SaveMode["sync"])  # the step donates the state
    checkpointer = Checkpointer(tmp_path_factory.mktemp("mid") / "checkpoints", sync)
    state, losses = first, []
    for step in range(6):  # one batch again and again: the loss must fall
        if step == 3:
            checkpointer.save(3, state, meta={"step": 3})
        state, metrics = program.train_step(state, jnp.asarray(TOKENS[:, :-1]), jnp.asarray(TOKENS[:, 1:]))
        losses.append(float(metrics["loss"]))
    yield config, program, start, state, losses, checkpointer
    checkpointer.close()


@pytest.mark.slow
def test_lora_resume_mid_run_is_exact(lora_run):
    _, program, _, state, _, checkpointer = lora_run
    resumed = checkpointer.restore(3, abstract_state(program.init_state, program.state_shardings)).state
    for _ in range(3):
        resumed, _ = program.train_step(resumed, jnp.asarray(TOKENS[:, :-1]), jnp.asarray(TOKENS[:, 1:]))
    assert jax.tree.all(jax.tree.map(lambda a, b: bool(jnp.array_equal(a, b)), resumed, state))


def test_lora_starts_equal_then_trains_adapters_only(lora_run, checkpoints):
    config, program, start, state, losses, _ = lora_run
    expected = checkpoints["llama"][1]
    base_logits = np.asarray(program.apply(jax.tree.map(jnp.asarray, start_params(program, start)),
                                           jnp.asarray(TOKENS)).logits)
    assert float(np.max(np.abs(base_logits - expected))) < 2e-5  # B = 0: the base model's logits
    assert losses[-1] < losses[0] - 0.5
    after = dict(jax.tree_util.tree_flatten_with_path(jax.tree.map(np.asarray, nnx.to_pure_dict(state.params)))[0])
    changed = {jax.tree_util.keystr(k) for k, v in jax.tree_util.tree_flatten_with_path(start)[0]
               if not np.array_equal(v, after[k])}
    adapters = {jax.tree_util.keystr(k) for k, _ in jax.tree_util.tree_flatten_with_path(start)[0]
                if k[-1].key in ("a", "b")}
    assert changed == adapters  # every base weight bit for bit as imported (b changed from 0, a too)
    opt_size = sum(x.size for x in jax.tree.leaves(state.opt_state))
    adapter_size = sum(after[k].size for k in after if k[-1].key in ("a", "b"))
    assert 2 * adapter_size <= opt_size < 2 * adapter_size + 16  # Adam moments of adapters only


def start_params(program, pure):
    params = abstract_state(program.init_state, program.state_shardings).params
    nnx.replace_by_pure_dict(params, jax.tree.map(jnp.asarray, pure))
    return params


@pytest.fixture(scope="module")
def saved_run(lora_run, tmp_path_factory):
    """The LoRA run's step 6 saved as hydralearn-train saves it (with its config); its logits."""
    config, program, _, state, _, _ = lora_run
    run_dir = tmp_path_factory.mktemp("run")
    checkpointer = Checkpointer(run_dir / "checkpoints", config.checkpoint, record=to_container(config))
    checkpointer.save(6, state, meta={"step": 6})
    checkpointer.close()
    return run_dir, np.asarray(program.apply(state.params, jnp.asarray(TOKENS)).logits)


def test_export_merged_and_peft_adapter_match_hydralearn(saved_run, checkpoints, tmp_path):
    run_dir, ours = saved_run
    export_cli.main([f"{run_dir}@6", "--to", "hf", str(tmp_path / "merged")])
    export_cli.main([str(run_dir), "--to", "hf", str(tmp_path / "adapter"), "--adapter-only"])
    with torch.no_grad():
        merged = AutoModelForCausalLM.from_pretrained(tmp_path / "merged").eval()
        got_merged = merged(torch.tensor(TOKENS)).logits.numpy()
        base = AutoModelForCausalLM.from_pretrained(checkpoints["llama"][0]).eval()
        peft = PeftModel.from_pretrained(base, tmp_path / "adapter").eval()
        got_peft = peft(torch.tensor(TOKENS)).logits.numpy()
    assert float(np.max(np.abs(ours - checkpoints["llama"][1]))) > 0.1  # training moved the logits
    for name, got in (("merged", got_merged), ("peft", got_peft)):
        diff = float(np.max(np.abs(got - ours)))
        print(f"\nLoRA {name} export: logits max |transformers - hydralearn| = {diff:.2e}")
        assert diff < 1e-4
    with pytest.raises(SystemExit) as e:  # never overwrites
        export_cli.main([str(run_dir), "--to", "hf", str(tmp_path / "merged")])
    assert e.value.code == 2


@pytest.mark.slow
def test_lora_on_moe_on_8_devices():
    from tests.conftest import tiny_config
    config = tiny_config("model=mixtral_tiny", "mesh.axes.expert=4", "schedule.warmup_steps=0",
                         "model/adapter=lora", "model.adapter.targets=[q,gate]", device_count=8)
    program = build(config, devices=jax.devices())
    state = program.init_state()
    gate = state.params["blocks"]["ffn"]["gate"]
    assert "expert" in str(gate["a"][...].sharding.spec)  # one adapter per expert, placed with it
    base, b = np.asarray(gate["base"][...]), np.asarray(gate["b"][...])
    state, metrics = program.train_step(state, jnp.asarray(TOKENS[:, :16]), jnp.asarray(TOKENS[:, 1:17]))
    gate = state.params["blocks"]["ffn"]["gate"]
    assert np.isfinite(float(metrics["loss"]))
    assert np.array_equal(np.asarray(gate["base"][...]), base) and not np.array_equal(np.asarray(gate["b"][...]), b)


def test_init_checkpoint_starts_a_new_run_from_another_runs_weights(lora_run, saved_run, checkpoints, one_device):
    config, program, _, state, _, _ = lora_run
    run_dir, ours = saved_run
    same = run_config(f"init.checkpoint={run_dir}@6", "init.hf_config=adopt", *RUN, *LORA, "name=next")
    first = initial_start(same, program).make()  # same model and optimizer: all of the state
    assert int(first.step) == 0
    assert jax.tree.all(jax.tree.map(lambda a, b: bool(jnp.array_equal(a, b)),
                                     (first.params, first.opt_state), (state.params, state.opt_state)))
    # Full fine-tuning from the LoRA run: its adapters merged, a fresh optimizer.
    full = run_config(f"init.checkpoint={run_dir / 'checkpoints'}", "init.checkpoint_optimizer=false",
                      *RUN, *hf.overrides(checkpoints["llama"][0]))
    program, first = started(full, one_device)
    got = np.asarray(program.apply(first.params, jnp.asarray(TOKENS)).logits)
    assert float(np.max(np.abs(got - ours))) < 1e-4
    assert all(float(jnp.max(jnp.abs(x))) == 0 for x in jax.tree.leaves(first.opt_state))
