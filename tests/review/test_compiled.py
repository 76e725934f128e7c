"""The training step compiled for real targets without their hardware: a TPU v5p topology
(libtpu) and H100s (the CUDA plugin), both from the test extra. Memory against a count written
out here; a step too big, a misspelt flag and a kernel that needs a GPU each refused in one line."""

import subprocess
import sys

import pytest

from hydralearn.errors import ConfigError
from hydralearn.review.compiled import compiled_memory
from hydralearn.review.plan import load_resolved
from tests.compose.cli_run import REPO

# Widths that are multiples of TPU tiles (128 lanes), so the TPU pads nothing and the count
# below is exact there too: d 1024 = 8 heads x 128, sharded 4 ways by fsdp.
SMALL = ["model.d_model=1024", "model.num_layers=2", "model.num_heads=8", "model.num_kv_heads=8",
         "model.ffn_dim=2048", "data=synthetic", "data.seq_len=256", "data.batch_size=8", "mesh=fsdp"]
ON = {"tpu_v5p": ["hardware=tpu_v5p"], "gpu_h100": ["hardware=gpu_h100", "hardware.devices_per_host=4"]}


def llama_params(*, vocab, d, layers, ffn):
    """Untied embedding and head, q/k/v/o of d x d (as many kv heads as heads), SwiGLU, 2 norms
    per layer and the final norm."""
    return 2 * vocab * d + layers * (4 * d * d + 3 * d * ffn + 2 * d) + d


@pytest.mark.parametrize("profile", sorted(ON))
def test_state_and_batch_are_the_compiled_arguments(profile):
    """XLA's argument bytes per device = float32 parameters and AdamW's two moments, all
    sharded 4 ways (fsdp), plus this device's quarter of the int32 inputs and targets."""
    config = load_resolved([*SMALL, *ON[profile]])
    memory = compiled_memory(config)
    assert memory.device_count == 4 and config.model.compute_dtype == "bfloat16"
    state = 3 * 4 * llama_params(vocab=256, d=1024, layers=2, ffn=2048) / 4
    batch = 2 * 4 * (8 * 256) / 4
    assert memory.argument_bytes == pytest.approx(state + batch, rel=0.05)
    assert memory.alias_bytes == pytest.approx(state, rel=0.05)  # the donated state, updated in place
    assert 0 < memory.temp_bytes < memory.peak_bytes < config.hardware.device_memory_bytes


TOO_BIG = [*SMALL, "data.seq_len=8192", "data.batch_size=512", "remat=none", "kernel=xla"]


@pytest.mark.parametrize("profile, how", [("tpu_v5p", "the compiler's own refusal"),
                                          ("gpu_h100", "its peak against the 80 GiB")])
def test_a_step_that_does_not_fit_is_refused_in_one_line(profile, how):
    done = subprocess.run([sys.executable, "-m", "hydralearn.cli.plan", "--compile", "--top", "0",
                           *TOO_BIG, *ON[profile], "name=too_big"],
                          cwd=REPO, capture_output=True, text=True, timeout=600)
    errors = [line for line in done.stderr.splitlines() if line.startswith("hydralearn: error:")]
    assert done.returncode == 2, done.stderr[-2000:]
    assert len(errors) == 1 and "Traceback" not in done.stderr, done.stderr[-2000:]
    (error,) = errors
    assert error.startswith(f"hydralearn: error: too_big does not fit on {'v5p' if 'tpu' in profile else 'h100'}")
    assert "GiB per device, over the" in error and "remat=full" in error  # names size, capacity and fixes


def test_a_flag_the_gpu_compiler_does_not_know_is_named():
    config = load_resolved([*SMALL, *ON["gpu_h100"],
                            "+hardware.xla_flags.xla_gpu_enable_latency_hiding_schedulr=true"])
    with pytest.raises(ConfigError) as refused:
        compiled_memory(config)
    assert refused.value.errors == [
        "hardware.xla_flags.xla_gpu_enable_latency_hiding_schedulr: the gpu compiler does not know it "
        "(compiling for h100 1x1x4 (4 devices)); fix or remove it "
        "(~hardware.xla_flags.xla_gpu_enable_latency_hiding_schedulr)"]


# The slow tier: every profile's flags and flash kernel through its compiler.
@pytest.mark.slow
@pytest.mark.parametrize("profile", ["gpu_h100", "gpu_h200", "gpu_b200", "tpu_v5p", "tpu_v6e"])
def test_every_profile_flag_is_accepted_by_its_compiler(profile):
    config = load_resolved([*SMALL, f"hardware={profile}", "hardware.devices_per_host=4"])
    assert config.hardware.xla_flags, f"{profile} has no XLA flags to check"
    assert compiled_memory(config).device_count == 4


@pytest.mark.slow
@pytest.mark.parametrize("profile, kernel, call", [
    ("gpu_h100", "cudnn", "__cudnn$fmhaSoftmaxBackward"), ("tpu_v5p", "splash", "tpu_custom_call")])
def test_the_flash_kernel_of_each_platform_is_in_the_compiled_step(profile, kernel, call):
    """At the profile's flash length, kernel=auto takes the hardware's kernel, and the compiled
    step calls it (forward and backward for cuDNN)."""
    config = load_resolved([*SMALL, *ON[profile], "data.seq_len=1024", "data.batch_size=4"])
    assert config.kernel.name.value == kernel
    assert call in compiled_memory(config).custom_calls


@pytest.mark.slow
def test_a_flag_libtpu_does_not_know_is_named_with_its_suggestion():
    config = load_resolved([*SMALL, *ON["tpu_v5p"], "+hardware.xla_flags.xla_tpu_enable_async_collective_fusionn=true"])
    with pytest.raises(ConfigError, match=r"hardware.xla_flags.xla_tpu_enable_async_collective_fusionn: the "
                                          r"tpu compiler does not know it .*; did you mean "
                                          r"xla_tpu_enable_async_collective_fusion\?"):
        compiled_memory(config)
