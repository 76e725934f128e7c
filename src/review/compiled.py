"""XLA's own figures for a resolved config's training step, compiled for the profile's real
target without its hardware (compose/target.py): TPU through libtpu's compile-only topologies,
NVIDIA GPUs through the CUDA plugin's deviceless compiler, CPU on simulated host devices.

The program is the one `hydralearn-train` runs there: the same `build` (mesh, shardings,
attention kernel, remat, dtypes, optimizer), the same batch structure, and the profile's XLA
flags in the environment variable a run puts them in. It is lowered from abstract state and
batch (nothing is allocated) and compiled in a child process, because the compiler reads its
flags once per process and a flag it rejects ends the process.

Run as a module: `python -m hydralearn.review.compiled` reads the resolved config as JSON on
stdin and prints one JSON line.
"""

import dataclasses
import json
import os
import re
import subprocess
import sys
import time

from hydralearn.config.schema import TrainConfig
from hydralearn.compose.target import Target, TargetUnavailable, environment, target_for
from hydralearn.errors import ConfigError

GIB = 2**30


@dataclasses.dataclass(frozen=True)
class CompiledMemory:
    """Per device, as XLA's memory analysis of the compiled step reports it."""

    target: str  # e.g. "v5p v5p:2x2x4 (16 devices)"
    device_kind: str  # what the compiler targeted, e.g. "TPU v5", "NVIDIA H100 80GB HBM3"
    device_count: int
    argument_bytes: int  # state and batch
    output_bytes: int
    temp_bytes: int  # activations and scratch
    alias_bytes: int  # outputs sharing an input's buffer (the donated state)
    xla_peak_bytes: int  # XLA's own peak on TPU and GPU (0 on CPU, which reports none)
    # Targets of the compiled program's custom calls: a fused attention kernel shows here
    # (cuDNN's "__cudnn$fmha...", a Pallas/Mosaic kernel's "tpu_custom_call" or Triton's).
    custom_calls: tuple[str, ...]
    compile_seconds: float

    @property
    def peak_bytes(self) -> int:
        """XLA's peak; else arguments + outputs + temporaries less the donated buffers."""
        summed = self.argument_bytes + self.output_bytes + self.temp_bytes - self.alias_bytes
        return self.xla_peak_bytes or summed


class DoesNotFit(ConfigError):
    """The compiled step needs more memory per device than the target has."""


def compiled_memory(config: TrainConfig, *, timeout_s: float = 3600) -> CompiledMemory:
    """Compile `config` (resolved for its profile) for its target; ConfigError in one line if
    the target cannot be compiled for here, the compiler refuses the program, or it does not fit."""
    try:
        target = target_for(config.hardware)
    except TargetUnavailable as e:
        raise ConfigError([str(e)]) from None
    from hydralearn.config.compose import to_container

    env = dict(os.environ, **environment(config.hardware, target))
    started = time.perf_counter()
    try:
        proc = subprocess.run([sys.executable, "-m", __name__], input=json.dumps(to_container(config)),
                              env=env, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        raise ConfigError([f"compiling for {target.describe()} took over {timeout_s:.0f} s; "
                           "it was stopped"]) from None
    seconds = time.perf_counter() - started
    result = _last_json(proc.stdout)
    if proc.returncode or result is None or "error" in result:
        raise ConfigError([_failure(config, target, proc.stderr, result)])
    memory = CompiledMemory(target=target.describe(), compile_seconds=round(seconds, 1),
                            **result | {"custom_calls": tuple(result["custom_calls"])})
    capacity = config.hardware.device_memory_bytes
    if memory.peak_bytes > capacity:
        raise DoesNotFit([does_not_fit(config, memory.peak_bytes, where=memory.target)])
    return memory


def does_not_fit(config: TrainConfig, peak: float, *, where: str) -> str:
    hardware = config.hardware
    return (f"{config.name} does not fit on {where}: XLA's compiled peak is {peak / GIB:.1f} GiB per "
            f"device, over the {hardware.device_memory_gib:g} GiB of a {hardware.name} device; "
            f"recompute more (remat=full), shrink the per-device batch (data.batch_size, "
            f"trainer.grad_accum) or shard the state more (mesh=fsdp, mesh=fsdp_tp)")


def _last_json(stdout: str) -> dict | None:
    for line in reversed(stdout.strip().splitlines()):
        try:
            return json.loads(line)
        except ValueError:
            continue
    return None


# A flag the target compiler does not know ends the compiling process: XLA_FLAGS (CPU, GPU)
# with "Unknown flag in XLA_FLAGS: --name=value", libtpu with "Unknown command line flag 'name'".
UNKNOWN_FLAG = re.compile(r"Unknown flag in XLA_FLAGS: --([\w.]+)|Unknown command line flag '([\w.]+)'"
                          r"(?:\. Did you mean: ([\w.]+))?")
# libtpu's refusal of a program larger than HBM names what it needed, e.g. "Ran out of memory
# on HBM, the total memory required for HLO temporaries (108.13G) exceeds available HBM
# (95.74G)" or "Used 120.5G of 95.74G hbm".
TPU_HBM = re.compile(r"\(([\d.]+[KMGT]?)\) exceeds available HBM|Used ([\d.]+[KMGT]?) of [\d.]+[KMGT]? hbm")


def _failure(config: TrainConfig, target: Target, stderr: str, result: dict | None) -> str:
    unknown = UNKNOWN_FLAG.search(stderr)
    if unknown:
        name = unknown.group(1) or unknown.group(2)
        hint = f"; did you mean {unknown.group(3)}?" if unknown.group(3) else ""
        rejected = f"the {target.platform.value} compiler does not know it (compiling for {target.describe()})"
        if name not in config.hardware.xla_flags:
            return f"--{name} in this environment's XLA flags: {rejected}{hint}; remove it"
        return f"hardware.xla_flags.{name}: {rejected}{hint}; fix or remove it (~hardware.xla_flags.{name})"
    if result is None:
        tail = (stderr.strip().splitlines() or ["no output"])[-1]
        return f"compiling for {target.describe()} failed: {tail}"
    message = result["error"]
    hbm = TPU_HBM.search(message)
    if "RESOURCE_EXHAUSTED" in message and hbm:
        return does_not_fit(config, _bytes(hbm.group(1) or hbm.group(2)), where=target.describe())
    return (f"the {target.platform.value} compiler refused the step for {target.describe()} "
            f"(kernel={config.kernel.name.value}, remat={config.remat.policy.value}): {message}")


def _bytes(size: str) -> float:
    scale = {"K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}.get(size[-1], 1)
    return float(size.rstrip("KMGT")) * scale


def abstract_batch(config: TrainConfig, sharding) -> tuple:
    """(inputs, targets[, segments]) as shapes, as the trainer passes them (runtime/trainer.py)."""
    import jax
    import jax.numpy as jnp

    from hydralearn.data.config import Packing

    tokens = jax.ShapeDtypeStruct((config.data.batch_size, config.data.seq_len), jnp.int32,
                                  sharding=sharding)
    if config.data.packing is Packing.segments:
        return tokens, tokens, {"positions": tokens, "segment_ids": tokens}
    return tokens, tokens


def _child(container: dict) -> dict:
    import jax

    from hydralearn.compose.build import build
    from hydralearn.config.compose import from_container
    from hydralearn.compose.target import compile_devices

    config = from_container(container)
    devices = compile_devices(target_for(config.hardware))
    program = build(config, devices=devices)
    state = jax.eval_shape(program.init_state)
    try:
        lowered = program.train_step.lower(state, *abstract_batch(config, program.batch_sharding))
        compiled = lowered.compile()
    except Exception as e:  # noqa: BLE001 - the compiler's refusal, reported in one line
        first = next((line for line in str(e).splitlines() if line.strip()), type(e).__name__)
        return {"error": first[:600]}
    stats = compiled.memory_analysis()
    calls = sorted(set(re.findall(r'custom_call_target="([^"]+)"', compiled.as_text())))
    return {"device_kind": devices[0].device_kind, "device_count": len(devices), "custom_calls": calls,
            "argument_bytes": int(stats.argument_size_in_bytes),
            "output_bytes": int(stats.output_size_in_bytes),
            "temp_bytes": int(stats.temp_size_in_bytes),
            "alias_bytes": int(stats.alias_size_in_bytes),
            # XLA:CPU reports its arguments as the "peak" (no heap simulation): not a peak.
            "xla_peak_bytes": 0 if devices[0].platform == "cpu" else int(stats.peak_memory_in_bytes)}


if __name__ == "__main__":
    print(json.dumps(_child(json.loads(sys.stdin.read()))))
