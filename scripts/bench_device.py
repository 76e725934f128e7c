"""The speed of one accelerator: hydralearn's train step of Llama 3.2 1B (1.24B parameters) in
bfloat16, and hydralearn against the same model in plain JAX. scripts/device_check.sh runs it
after the accelerator-only tests; docs/performance.md explains the figures and keeps the ledger
this script appends to (one row per measurement).

    .venv/bin/python scripts/bench_device.py [--ledger FILE]   # measure, append rows to FILE
    .venv/bin/python scripts/bench_device.py --detect          # print: platform count profile kind

The hardware profile follows the device JAX finds (GPU_PROFILES, TPU_PROFILES); one device is
used (`jax.devices()[:1]`, hardware.devices_per_host=1). Each measurement runs WARMUP + TIMED
steps on synthetic data and reports the median timed step, tokens/s and MFU against the profile's
published peak (hardware.peak_flops_per_device):

1. hydralearn alone: bfloat16, the profile's default kernel and remat, seq 2048 x batch 8 (XLA's
   compiled peak on an H100: 37.7 GiB, `hydralearn-plan --compile`).
2. hydralearn against tests/reference/plain_llama.py, step by step in turn (as
   scripts/bench_overhead.py): in float32, the only dtype plain_llama computes in (its RoPE
   promotes bfloat16 activations to float32), with plain_llama's computation on both sides (XLA
   attention, no remat, plain RoPE), at seq 1024 x batch 2: without remat, plain JAX's activations
   outgrow one device beyond that while both models' weights and Adam states stay resident
   (about 52 GiB on an H100 at this shape).

On a CPU (device_check.sh's HYDRALEARN_DEVICE_CHECK_ON_CPU=1, to test this script) the second
measurement runs a tiny model, and no row goes into docs/performance.md.
"""

import argparse
import dataclasses
import datetime
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # for tests.reference

DOCS_LEDGER = ROOT / "docs" / "performance.md"
LEDGER_HEADER = "| date (UTC) |"  # the ledger table's first line; rows go after its last row
NOT_MEASURED = "not yet measured on an accelerator"  # the placeholder row, dropped by the first row
WARMUP, TIMED = 2, 10
# device_kind -> conf/hardware profile: GPUs by a part of the name ("NVIDIA H100 80GB HBM3",
# "NVIDIA GH200 480GB"), TPUs by the whole name (v5p calls itself "TPU v5", v6e "TPU v6 lite").
GPU_PROFILES = {"B200": "gpu_b200", "H200": "gpu_h200", "H100": "gpu_h100"}
TPU_PROFILES = {"TPU v5": "tpu_v5p", "TPU v5p": "tpu_v5p", "TPU v6 lite": "tpu_v6e", "TPU v6e": "tpu_v6e"}
COMMON = ("data=synthetic", "hardware.devices_per_host=1", f"trainer.steps={WARMUP + TIMED}")
# plain_llama's computation: float32, XLA attention, no remat, RoPE without Llama 3 scaling.
AS_PLAIN = ("model.compute_dtype=float32", "kernel=xla", "remat=none", "model/position=rope")
TINY = ("model=llama_tiny", "model.d_model=32", "model.num_layers=2", "model.num_heads=4",
        "model.num_kv_heads=2", "model.ffn_dim=64")


@dataclasses.dataclass(frozen=True, kw_only=True)
class Device:
    platform: str  # jax.default_backend(): gpu, tpu or cpu
    count: int  # local devices; the check uses the first
    kind: str  # device_kind, e.g. "NVIDIA H100 80GB HBM3"

    @property
    def profile(self) -> str:
        if self.platform == "cpu":
            return "cpu"
        if self.platform == "tpu":
            return TPU_PROFILES.get(self.kind, "unknown")
        return next((p for part, p in GPU_PROFILES.items() if part in self.kind), "unknown")


@dataclasses.dataclass(frozen=True, kw_only=True)
class Measurement:
    title: str
    overrides: tuple[str, ...]
    against_plain: bool


@dataclasses.dataclass(frozen=True, kw_only=True)
class Side:
    seconds: float  # median step after the warm-up steps
    tokens_per_s: float
    mfu: float
    losses: tuple[float, float]  # first and last step


@dataclasses.dataclass(frozen=True, kw_only=True)
class Result:
    measurement: Measurement
    model: str
    dtype: str
    kernel: str
    remat: str
    shape: str  # "seq x batch"
    hydralearn: Side
    plain: Side | None


def measurements(device: Device) -> list[Measurement]:
    """The 1B shapes (sized for an 80 GB H100, module docstring). On a CPU only the comparison,
    of a tiny model: its path includes the headline's, and the test of this script stays quick."""
    base = (*COMMON, f"hardware={device.profile}")
    if device.platform == "cpu":
        return [comparison(*TINY, *base, "data.seq_len=32", "data.batch_size=2")]
    base = ("model=llama3_2_1b", *base)
    headline = ("model.compute_dtype=bfloat16", "data.seq_len=2048", "data.batch_size=8")
    return [Measurement(title="hydralearn, the profile's defaults", against_plain=False,
                        overrides=(*base, *headline)),
            comparison(*base, "data.seq_len=1024", "data.batch_size=2")]


def comparison(*overrides: str) -> Measurement:
    return Measurement(title="hydralearn vs plain JAX, interleaved", against_plain=True,
                       overrides=(*overrides, *AS_PLAIN))


def detect() -> Device:
    """This machine's accelerator, found in a child process: the backend reads the profile's XLA
    flags once, when it starts, and this process applies them only after choosing the profile."""
    found = subprocess.run([sys.executable, __file__, "--detect"], capture_output=True, text=True)
    if found.returncode:
        sys.exit(f"bench_device: JAX could not list the devices:\n{found.stderr}")
    platform, count, _, kind = found.stdout.split(maxsplit=3)
    return Device(platform=platform, count=int(count), kind=kind.strip())


def print_detected() -> None:
    import jax

    device = Device(platform=jax.default_backend(), count=jax.local_device_count(),
                    kind=jax.devices()[0].device_kind)
    print(device.platform, device.count, device.profile, device.kind)


def hydralearn_step(program, state) -> Callable:
    """One train step of `program` from `state` per call; returns the loss."""
    def step(inputs, targets):
        nonlocal state
        state, metrics = program.train_step(state, inputs, targets)
        return metrics["loss"]
    return step


def plain_step(config, params) -> Callable:
    """The same step in plain JAX + optax (hydralearn's optimizer) from `params`."""
    import jax
    import optax

    from hydralearn.compose.optim import build_optimizer
    from tests.reference import plain_llama

    tx = build_optimizer(config.optim, schedule=config.schedule, total_steps=config.trainer.steps).transform
    theta = config.model.rope_theta

    def update(params, opt_state, inputs, targets):
        loss, grads = jax.value_and_grad(plain_llama.loss)(params, inputs, targets, rope_theta=theta)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss
    # Donated like hydralearn's state: both models stay on the device, and a second copy of
    # either would not fit beside them at the 1B shape.
    update = jax.jit(update, donate_argnums=(0, 1))
    opt_state = tx.init(params)

    def step(inputs, targets):
        nonlocal params, opt_state
        params, opt_state, loss = update(params, opt_state, inputs, targets)
        return loss
    return step


def timed(steps: dict[str, Callable], batches: list) -> dict[str, tuple[float, list[float]]]:
    """Per side: the median seconds of the steps after WARMUP, and every step's loss. The sides
    take turns on each batch, so a drifting clock or a busy neighbour hits them alike."""
    import jax

    times, losses = {name: [] for name in steps}, {name: [] for name in steps}
    for inputs, targets in batches:
        for name, step in steps.items():
            start = time.perf_counter()
            loss = jax.block_until_ready(step(inputs, targets))
            times[name].append(time.perf_counter() - start)
            losses[name].append(float(loss))
    return {name: (statistics.median(times[name][WARMUP:]), losses[name]) for name in steps}


def measure(measurement: Measurement, *, host) -> Result:
    """Build, run and time one measurement; its states are freed when it returns."""
    import jax

    from hydralearn.config import compose as compose_config
    from hydralearn.compose.build import build
    from hydralearn.compose.resolve import resolve
    from hydralearn.data.loader import first_batches
    from tests.reference import plain_llama

    config = resolve(compose_config.load(list(measurement.overrides)), host=host)
    program = build(config, devices=jax.devices()[:1])
    put = lambda x: jax.device_put(x, program.batch_sharding)  # noqa: E731
    batches = [(put(b.inputs), put(b.targets)) for b in first_batches(config.data, WARMUP + TIMED)]
    state = program.init_state()
    steps = {"hydralearn": hydralearn_step(program, state)}
    if measurement.against_plain:  # from the same weights, copied: the first step donates state
        weights = jax.tree.map(jax.numpy.copy, plain_llama.from_hydralearn(state.params))
        steps["plain"] = plain_step(config, weights)
    del state  # the steps hold their states from here; the first step donates this one
    sides = figures(config, program, timed(steps, batches))
    return Result(measurement=measurement, model=config.name, dtype=config.model.compute_dtype,
                  kernel=config.kernel.name.value, remat=config.remat.policy.value,
                  shape=f"{config.data.seq_len} x {config.data.batch_size}",
                  hydralearn=sides["hydralearn"], plain=sides.get("plain"))


def figures(config, program, timings: dict) -> dict[str, Side]:
    """Tokens/s and MFU of each side, by the project's FLOPs count (as hydralearn-train's)."""
    from hydralearn.compose.build import flops_per_token

    model, data = config.model, config.data
    tokens = data.batch_size * data.seq_len
    fpt = flops_per_token(matmul_params=program.matmul_params, num_layers=model.num_layers,
                          attention_dim=model.num_heads * model.resolved_head_dim, seq_len=data.seq_len)
    peak = config.hardware.peak_flops_per_device
    return {name: Side(seconds=s, tokens_per_s=tokens / s, mfu=tokens / s * fpt / peak,
                       losses=(losses[0], losses[-1]))
            for name, (s, losses) in timings.items()}


def report(result: Result) -> None:
    print(f"{result.measurement.title}: {result.model} {result.dtype}, kernel {result.kernel}, "
          f"remat {result.remat}, seq x batch {result.shape}")
    sides = {"hydralearn": result.hydralearn, "plain JAX": result.plain}
    for name, side in sides.items():
        if side is not None:
            print(f"  {name:>10}: {side.seconds * 1e3:9.1f} ms/step {side.tokens_per_s:12,.0f} tokens/s"
                  f"  MFU {percent(side.mfu)}  loss {side.losses[0]:.4f} -> {side.losses[1]:.4f}")
    if result.plain is not None:
        print(f"  {'ratio':>10}: {result.hydralearn.seconds / result.plain.seconds:.3f} "
              "(hydralearn / plain JAX step time; first losses should agree)")


def percent(fraction: float) -> str:
    return f"{fraction * 100:.3g}%"  # 3 digits: a tiny CPU model's MFU is far below 1%


def ledger_row(result: Result, *, device: Device, when: str, commit: str) -> str:
    """One line of the ledger table in docs/performance.md (columns as its header)."""
    def side(s: Side | None) -> list[str]:
        if s is None:
            return ["—"] * 3
        return [f"{s.seconds * 1e3:.1f}", f"{s.tokens_per_s:,.0f}", percent(s.mfu)]
    ratio = "—" if result.plain is None else f"{result.hydralearn.seconds / result.plain.seconds:.3f}"
    cells = [when, f"{device.kind} ({device.profile}), 1 of {device.count}", commit, result.model,
             result.dtype, f"{result.kernel}, {result.remat}", result.shape,
             *side(result.hydralearn), *side(result.plain), ratio]
    return "| " + " | ".join(cells) + " |"


def append_rows(path: Path, rows: list[str]) -> None:
    """Rows added at the end of the ledger table; the first replace its placeholder row."""
    if not path.is_file():
        sys.exit(f"bench_device: no ledger file {path}; give --ledger a copy of {DOCS_LEDGER}")
    lines = [line for line in path.read_text().splitlines()
             if not (line.startswith("|") and NOT_MEASURED in line)]
    start = next((i for i, line in enumerate(lines) if line.startswith(LEDGER_HEADER)), None)
    if start is None:
        sys.exit(f"bench_device: {path} has no ledger table (a line starting {LEDGER_HEADER!r})")
    end = start
    while end < len(lines) and lines[end].startswith("|"):
        end += 1
    path.write_text("\n".join(lines[:end] + rows + lines[end:]) + "\n")


def git_commit() -> str:
    """The short commit, `+dirty` when the tree has changes (without taking git's index lock)."""
    def git(*args: str) -> str:
        return subprocess.run(["git", "--no-optional-locks", *args], cwd=ROOT, capture_output=True,
                              text=True).stdout.strip()
    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    return commit + ("+dirty" if git("status", "--porcelain") else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--detect", action="store_true",
                        help="print the device and its profile, then exit")
    parser.add_argument("--ledger", type=Path, default=DOCS_LEDGER,
                        help="the file whose ledger table gets the rows (default: %(default)s)")
    args = parser.parse_args()
    if args.detect:
        return print_detected()
    device = detect()
    if device.profile == "unknown":
        sys.exit(f"bench_device: no hardware profile for {device.kind!r} ({device.platform}); known: "
                 f"{', '.join(sorted({*GPU_PROFILES.values(), *TPU_PROFILES.values()}))}. Add a "
                 "conf/hardware profile (docs/composer.md) and its device_kind to GPU_PROFILES "
                 "or TPU_PROFILES in scripts/bench_device.py")
    plan = measurements(device)
    start(plan[0].overrides)
    print(f"device: {device.kind} ({device.platform}), 1 of {device.count}; profile {device.profile}")
    for measurement in plan:  # each row recorded at once: a later failure keeps the earlier ones
        result = measure(measurement, host=this_host())
        report(result)
        record(args.ledger, result, device=device)


def start(overrides: tuple[str, ...]) -> None:
    """The profile's XLA flags applied before JAX starts its backend, as hydralearn-train does."""
    from hydralearn.runtime.run import start_processes
    from hydralearn.config import compose as compose_config

    start_processes(compose_config.load(list(overrides)))


def this_host():
    """The backend JAX started, as the one device the check uses."""
    from hydralearn.compose.hardware import Host

    return dataclasses.replace(Host.current(), device_count=1)


def record(path: Path, result: Result, *, device: Device) -> None:
    """The result's ledger row appended to `path`; never a CPU row to docs/performance.md."""
    if device.platform == "cpu" and path.resolve() == DOCS_LEDGER:
        print(f"ledger: a CPU run is not recorded in {DOCS_LEDGER.relative_to(ROOT)}")
        return
    when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M")
    append_rows(path, [ledger_row(result, device=device, when=when, commit=git_commit())])
    print(f"ledger: row appended to {path}")


if __name__ == "__main__":
    main()
