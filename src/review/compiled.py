"""XLA's own memory figures for a config's train step, compiled for simulated CPU devices.

The step is lowered and compiled in a child process whose XLA_FLAGS simulate the plan's
device count (`--xla_force_host_platform_device_count`; jax reads it once, at start-up).
Nothing is allocated: state and batch are abstract (shape, dtype, sharding). The attention
kernel is forced to `xla` and hardware XLA flags are dropped, because the program is compiled
for CPU. Compile time grows with model size and device count: large models on hundreds of
simulated devices take minutes; docs/tooling.md has measured examples.

Run as a module: `python -m hydralearn.review.compiled DEVICES LOCATION_JSON [overrides...]`
prints JSON.
"""

import dataclasses
import json
import os
import subprocess
import sys


@dataclasses.dataclass(frozen=True)
class CompiledMemory:
    device_count: int
    argument_bytes: int  # per device: state and batch
    output_bytes: int
    temp_bytes: int  # activations and scratch
    alias_bytes: int  # outputs sharing an input's buffer (the donated state)
    generated_code_bytes: int

    @property
    def peak_bytes(self) -> int:
        """Arguments + outputs + temporaries, less the donated buffers counted twice."""
        return self.argument_bytes + self.output_bytes + self.temp_bytes - self.alias_bytes


class CompileError(RuntimeError):
    pass


def compiled_memory(overrides: list[str], *, device_count: int, location=None,
                    timeout_s: float = 1800) -> CompiledMemory:
    """`location`: a compose_config.Location (the command line's -cp/-cn/--config-dir)."""
    env = dict(os.environ, JAX_PLATFORMS="cpu",
               XLA_FLAGS=f"--xla_force_host_platform_device_count={device_count}")
    where = json.dumps(dataclasses.asdict(location) if location is not None else {})
    proc = subprocess.run([sys.executable, "-m", __name__, str(device_count), where, *overrides],
                          env=env, capture_output=True, text=True, timeout=timeout_s)
    if proc.returncode:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise CompileError(f"compiling the step for {device_count} simulated devices failed: {tail}")
    return CompiledMemory(**json.loads(proc.stdout.strip().splitlines()[-1]))


def _child(device_count: int, where: dict, overrides: list[str]) -> dict:
    import jax

    from hydralearn.compose import config as compose_config
    from hydralearn.compose.build import build
    from hydralearn.compose.resolve import resolve
    from hydralearn.compose.schema import Kernel

    config = compose_config.load(overrides, compose_config.Location(**where))
    config = dataclasses.replace(
        config, kernel=dataclasses.replace(config.kernel, name=Kernel.xla),
        hardware=dataclasses.replace(config.hardware, xla_flags={}))
    config = resolve(config, device_count=device_count)
    program = build(config, devices=jax.devices()[:device_count])
    state = jax.eval_shape(program.init_state)
    batch = jax.ShapeDtypeStruct((config.data.batch_size, config.data.seq_len), jax.numpy.int32,
                                 sharding=program.batch_sharding)
    stats = program.train_step.lower(state, batch, batch).compile().memory_analysis()
    return {"device_count": device_count,
            "argument_bytes": int(stats.argument_size_in_bytes),
            "output_bytes": int(stats.output_size_in_bytes),
            "temp_bytes": int(stats.temp_size_in_bytes),
            "alias_bytes": int(stats.alias_size_in_bytes),
            "generated_code_bytes": int(stats.generated_code_size_in_bytes)}


if __name__ == "__main__":
    print(json.dumps(_child(int(sys.argv[1]), json.loads(sys.argv[2]), sys.argv[3:])))
