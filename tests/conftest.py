"""Shared fixtures. The whole pytest process sees 8 simulated CPU devices (set before jax is
imported); tests that want one device say so with `devices=jax.devices()[:1]`."""

import os

os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8").strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import dataclasses  # noqa: E402
import tempfile  # noqa: E402

import jax  # noqa: E402
import pytest  # noqa: E402

from hydralearn.config import compose as compose_config  # noqa: E402
from hydralearn.compose.resolve import resolve

TINY = ["model.d_model=32", "model.num_layers=2", "model.num_heads=4", "model.num_kv_heads=2",
        "model.ffn_dim=64", "data=synthetic", "data.seq_len=16", "data.batch_size=8"]


def tiny_config(*overrides: str, device_count: int = 1):
    """The default config shrunk to test size, validated and resolved for `device_count`."""
    config = compose_config.load([*TINY, *overrides])
    return resolve(config, device_count=device_count)


@pytest.fixture(scope="session", autouse=True)
def compile_cache():
    """JAX's compilation cache of every process the suite starts (they inherit the environment,
    and `trainer.compile_cache: auto` takes JAX's own variable): this session's directory, never
    the user's. This process read its environment at `import jax` above: it compiles uncached."""
    with tempfile.TemporaryDirectory(prefix="hydralearn-test-jax-cache-") as directory, \
            pytest.MonkeyPatch.context() as patch:
        patch.setenv("JAX_COMPILATION_CACHE_DIR", directory)
        yield directory


@pytest.fixture(scope="session")
def one_device():
    return jax.devices()[:1]


@pytest.fixture(scope="session")
def tiny_program(one_device):
    """One compiled tiny program shared by the tests that only read from it."""
    from hydralearn.compose.build import build
    return build(tiny_config("trainer.steps=50"), devices=one_device)


def replace(config, **groups):
    return dataclasses.replace(config, **groups)


# The slow tier: proofs that start many processes or compile many programs. The default run
# (`bash scripts/test.sh`, what CI runs) leaves them out to keep CI under 20 minutes; run them
# with `bash scripts/test.sh -m slow` (or everything with `-m ""`). Prefixes of test ids.
SLOW = (
    "tests/runtime/test_scale_out.py",
    "tests/plugins/test_plugins.py",
    "tests/cli/test_sweep.py::test_a_failing_point_is_recorded_and_the_others_run",
    "tests/cli/test_sweep.py::test_joblib_launcher_runs_points_in_parallel_processes",
    "tests/data/test_processes.py::test_kill_9_on_jsonl_resumes_bit_for_bit",
    "tests/runtime/test_resume.py::test_a_refused_run_changes_nothing",
    "tests/runtime/test_resume.py::test_kill_mid_write_leaves_previous_checkpoint",
    "tests/runtime/test_resume.py::test_requeued_job_resumes_with_a_remat_change",
    "tests/runtime/test_resume.py::test_sigterm_saves_at_current_step_and_exits_cleanly",
    "tests/runtime/test_checkpoint.py::test_restore_reshards_into_another_mesh",
    "tests/runtime/test_trainer.py::test_skip_keeps_params_and_optimizer_state",
    "tests/runtime/test_trainer.py::test_stop_names_the_step_and_keeps_earlier_checkpoints",
    "tests/runtime/test_training.py::test_state_is_created_sharded_on_eight_devices",
    "tests/compose/test_accumulate.py::test_moe_aux_metrics_are_the_microbatches_mean",
    "tests/compose/test_config.py::test_every_option_builds_and_runs_on_a_tiny_model",
    "tests/compose/test_config.py::test_every_option_composes_on_every_preset",
    "tests/compose/test_kernels.py::test_pallas_kernels_run_per_shard_on_a_sharded_mesh",
    "tests/compose/test_plan.py::test_compiled_memory_agrees_with_the_state_size",
    "tests/review/test_compiled.py::test_every_profile_flag_is_accepted_by_its_compiler",
    "tests/review/test_compiled.py::test_the_flash_kernel_of_each_platform_is_in_the_compiled_step",
    "tests/review/test_compiled.py::test_a_flag_libtpu_does_not_know_is_named_with_its_suggestion",
    "tests/review/test_ledger.py::test_a_fresh_compile_reproduces_its_entry",
    "tests/compose/test_remat.py::test_peak_memory_falls_from_none_to_full",
    "tests/compose/test_remat.py::test_policy_gives_the_gradients_of_no_remat",
    "tests/compose/test_sharding.py::test_layout_trains_like_one_device",
    "tests/compose/test_sharding.py::test_moe_experts_shard_over_the_expert_axis",
    "tests/compose/test_sharding.py::test_sharded_init_never_materialises_the_whole_state",
    "tests/compose/test_xla.py::test_autos_and_flags_are_applied_and_recorded",
    "tests/interop/test_finetune.py::test_lora_on_moe_on_8_devices",
    "tests/interop/test_finetune.py::test_lora_resume_mid_run_is_exact",
    "tests/interop/test_hf.py::test_training_continues_from_the_imported_weights",
    "tests/layers/test_moe.py::test_aux_loss_reaches_the_gradient",
    "tests/layers/test_moe.py::test_every_nth_layer_scans_groups_and_reaches_the_objective",
    "tests/layers/test_moe.py::test_expert_mesh_axis_shards_the_experts",
    "tests/layers/test_presets.py::test_loc_complexity_can_see_a_feature_that_needs_more",
    "tests/layers/test_presets.py::test_loc_complexity_stays_zero_as_presets_are_added",
    "tests/layers/test_presets.py::test_one_override_builds_on_every_preset",
    "tests/compose/test_sharding.py::test_parameters_are_sharded_as_the_rules_say",
    "tests/runtime/test_profile.py",
    "tests/compose/test_cache.py::test_a_rerun_reads_the_entries_the_first_run_wrote",
    "tests/compose/test_cache.py::test_a_changed_step_compiles_afresh",
    "tests/compose/test_cache.py::test_off_writes_no_directory_and_the_config_wins_over_jax_variable",
)


def pytest_collection_modifyitems(items):
    for item in items:
        if item.nodeid.startswith(SLOW):
            item.add_marker(pytest.mark.slow)
