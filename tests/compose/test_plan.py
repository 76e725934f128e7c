"""Planner numbers against formulas written out here, and the CLI's behaviour."""

import json
import re
import shlex
from pathlib import Path

import pytest

from hydralearn.cli import plan as plan_cli
from hydralearn.review.explain import explain
from hydralearn.review.plan import load_resolved, make_plan

TINY = ["mesh=fsdp", "model.d_model=64", "model.num_layers=3", "model.num_heads=4", "model.num_kv_heads=2",
        "model.ffn_dim=96", "data=synthetic", "data.seq_len=32", "data.batch_size=8"]


def llama_params(*, vocab, d, layers, heads, kv_heads, ffn, tied=False):
    """Llama parameter count: embedding (+ untied head), per layer q/k/v/o + SwiGLU + 2 norms."""
    head_dim = d // heads
    attention = d * heads * head_dim * 2 + d * kv_heads * head_dim * 2
    per_layer = attention + 3 * d * ffn + 2 * d
    return vocab * d * (1 if tied else 2) + layers * per_layer + d


@pytest.fixture(scope="module")
def tiny_fsdp8():
    return make_plan(load_resolved([*TINY, "hardware.devices_per_host=8"]))


def test_parameter_count_and_flops_match_formulas(tiny_fsdp8):
    n = llama_params(vocab=256, d=64, layers=3, heads=4, kv_heads=2, ffn=96)
    assert tiny_fsdp8.total_params == tiny_fsdp8.active_params == n
    # 6N over the matmul weights (not the embedding lookup) + 12 * L * d_attn per attended key
    # (PaLM, app. B); causal: a query at position t attends t + 1 keys, (1 + ... + 32) / 32 = 16.5.
    assert tiny_fsdp8.flops_per_token == pytest.approx(6 * (n - 256 * 64) + 12 * 3 * 64 * 16.5)
    assert tiny_fsdp8.tokens_per_step == 8 * 32


def test_llama2_70b_on_64_hosts_of_8():
    plan = make_plan(load_resolved(["model=llama2_70b", "hardware=gpu_h100", "hardware.hosts=64",
                                    "mesh=fsdp", "data.batch_size=512"]))
    assert plan.total_params == llama_params(vocab=32000, d=8192, layers=80, heads=64, kv_heads=8,
                                             ffn=28672) == 68_976_648_192
    assert plan.device_count == 512 and plan.mesh["fsdp"] == 512


def test_fsdp_parameter_bytes_per_device(tiny_fsdp8):
    # Every weight has an `embed` axis sharded over fsdp=8 (d=64 divides evenly): float32 / 8.
    assert tiny_fsdp8.mesh == {"data": 1, "fsdp": 8, "tensor": 1, "expert": 1, "seq": 1}
    assert tiny_fsdp8.memory.params == tiny_fsdp8.total_params * 4 // 8
    assert tiny_fsdp8.memory.grads == tiny_fsdp8.memory.params
    # AdamW: two moments shaped and sharded like the parameters, plus replicated step counts.
    assert 2 * tiny_fsdp8.memory.params <= tiny_fsdp8.memory.optimizer <= 2 * tiny_fsdp8.memory.params + 64
    largest = tiny_fsdp8.tensors[0]
    assert largest.bytes_per_device == max(r.bytes_per_device for r in tiny_fsdp8.tensors)


def test_remat_full_keeps_fewer_activations():
    none = make_plan(load_resolved(TINY)).memory.activations
    full = make_plan(load_resolved([*TINY, "remat=full"])).memory.activations
    assert 0 < full < none


@pytest.mark.slow
def test_compiled_memory_agrees_with_the_state_size():
    """On 8 simulated CPU devices, XLA's argument bytes per device = float32 state (params + 2
    Adam moments, fsdp/8) + the batch."""
    from hydralearn.review.compiled import compiled_memory
    stats = compiled_memory(load_resolved([*TINY, "hardware.devices_per_host=8"]))
    assert stats.target == "cpu 8 host devices (8 devices)"
    state = 3 * 4 * llama_params(vocab=256, d=64, layers=3, heads=4, kv_heads=2, ffn=96) / 8
    batch = 2 * (8 // 8) * 32 * 4  # inputs and targets, int32, batch split 8 ways
    assert stats.argument_bytes == pytest.approx(state + batch, rel=0.01, abs=256)
    assert stats.temp_bytes > 0


def test_explain_names_the_file_and_the_override():
    lr = explain("optim.lr", ["optim.lr=1e-3"])
    assert [s.where for s in lr.sources] == ["schema optim/base_adamw", "command line"]
    assert lr.sources[0].how == "the schema's default" and lr.resolved == 1e-3
    theta = explain("model.rope_theta", ["model=llama3_8b"])
    assert theta.sources[-1].where == "conf/model/llama3_8b.yaml"
    assert "model=llama3_8b" in theta.sources[-1].how
    data = explain("mesh.axes.data", ["mesh=fsdp", "hardware.devices_per_host=4"])
    assert data.sources[-1].where == "conf/mesh/fsdp.yaml" and "mesh=fsdp" in data.sources[-1].how
    fsdp = explain("mesh.axes.fsdp", ["mesh=fsdp", "hardware.devices_per_host=4"])
    assert [s.where for s in fsdp.sources] == ["schema mesh/base_mesh"]
    assert fsdp.value == -1 and fsdp.resolved == 4
    hosts = explain("hardware.hosts", ["+experiment=llama2_70b_h100_64x8"])
    assert [s.where for s in hosts.sources] == ["schema hardware/base_hardware",
                                                "conf/experiment/llama2_70b_h100_64x8.yaml"]
    assert hosts.resolved == 64
    per_host = explain("hardware.devices_per_host", ["+experiment=llama2_70b_h100_64x8"])
    assert [s.where for s in per_host.sources] == ["schema hardware/base_hardware",
                                                   "conf/hardware/gpu_h100.yaml"]
    assert "override /hardware: gpu_h100" in per_host.sources[1].how and per_host.resolved == 8


def test_cli_prints_the_plan_and_refuses_bad_input(capsys):
    plan_cli.main([*TINY, "hardware.devices_per_host=8"])
    out = capsys.readouterr().out
    assert "fsdp=8" in out and "largest tensors per device" in out
    plan_cli.main([*TINY, "--json", "--top", "2"])
    as_json = json.loads(capsys.readouterr().out)
    assert as_json["total_params"] == llama_params(vocab=256, d=64, layers=3, heads=4, kv_heads=2, ffn=96)
    assert len(as_json["tensors"]) == 2 and as_json["memory"]["total"] > 0
    with pytest.raises(SystemExit) as exit_info:
        plan_cli.main(["model=llama2_7bb"])
    assert exit_info.value.code == 2
    assert "did you mean 'llama2_7b'" in capsys.readouterr().err


def test_mixtral_active_parameters_and_flops():
    """Mixtral 8x7B: 8 SwiGLU experts of which 2 per token, a d x 8 router per layer."""
    plan = make_plan(load_resolved(["+experiment=mixtral_8x7b_h100_16x8"]))
    v, d, layers, heads, kv, f, e, k, t = 32000, 4096, 32, 32, 8, 14336, 8, 2, 4096
    head_dim = d // heads
    attention = 2 * d * heads * head_dim + 2 * d * kv * head_dim
    shared = 2 * v * d + layers * (attention + d * e + 2 * d) + d
    assert plan.total_params == shared + layers * e * 3 * d * f == 46_702_792_704
    assert plan.active_params == shared + layers * k * 3 * d * f
    assert plan.flops_per_token == pytest.approx(
        6 * (plan.active_params - v * d) + 12 * layers * heads * head_dim * (t + 1) / 2)
    assert plan.mesh["expert"] == 2 and plan.device_count == 128


def test_accelerator_plans_its_own_dtype_and_kernel():
    """compute_dtype auto and kernel auto resolve for the stated profile, not this CPU."""
    long = make_plan(load_resolved(["model=llama2_70b", "hardware=gpu_h100", "data.seq_len=4096"]))
    assert (long.compute_dtype, long.kernel) == ("bfloat16", "cudnn")
    # Short sequences stay on XLA's attention (kernel.flash_min_seq_len, conf/kernel/auto.yaml).
    short = make_plan(load_resolved(["model=llama2_70b", "hardware=gpu_h100", "data.seq_len=512"]))
    assert (short.compute_dtype, short.kernel) == ("bfloat16", "xla")
    assert make_plan(load_resolved(TINY)).compute_dtype == "float32"  # the cpu profile


def test_readme_example_that_does_not_fit_warns(capsys):
    """The README's "warns: does not fit" line, run as written."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    (line,) = [line for line in readme.splitlines() if "# warns: does not fit" in line]
    command = shlex.split(line.partition("#")[0])
    assert command[0] == "hydralearn-plan"
    plan_cli.main(command[1:])
    out = capsys.readouterr().out
    (total,) = re.findall(r"total +([\d.]+) GiB of 80.00 GiB", out)
    assert float(total) > 80 and "warning: estimated" in out and "exceeds the 80 GiB" in out
    assert "compute dtype        bfloat16" in out
