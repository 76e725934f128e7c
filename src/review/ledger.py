"""The compiled-memory ledger: for every named experiment on a GPU or TPU profile, XLA's memory
per device of its training step compiled for the real target (review/compiled.py), beside the
planner's estimate, in tests/golden/<name>.compiled.json.

A config change that moves memory then shows in review as a diff of these files. The figures
depend on the compiler, so each entry names the versions that produced it; refreshing needs
the aot-tpu and aot-gpu extras and takes minutes (scripts/refresh_ledger.py).
"""

import dataclasses
import importlib.metadata
import json
from pathlib import Path

from hydralearn.config.schema import Platform
from hydralearn.review import golden
from hydralearn.review.compiled import CompiledMemory, compiled_memory
from hydralearn.review.plan import load_resolved, make_plan

SUFFIX = ".compiled.json"
REFRESH_COMMAND = ".venv/bin/python scripts/refresh_ledger.py"
ACCELERATORS = (Platform.gpu, Platform.tpu)
COMPILERS = {Platform.tpu: ("jax", "libtpu"), Platform.gpu: ("jax", "jax-cuda12-plugin")}


@dataclasses.dataclass(frozen=True)
class Entry:
    experiment: str
    target: str
    device_kind: str
    compiler: str  # the package versions that compiled it
    kernel: str
    remat: str
    argument_bytes: int  # per device
    output_bytes: int
    temp_bytes: int
    alias_bytes: int
    peak_bytes: int  # what is held against the device's memory (CompiledMemory.peak_bytes)
    estimate_bytes: int  # the planner's formula (review/memory.py)
    flops_per_token: float  # the planner's, as the trainer's MFU counts them (build.flops_per_token)

    @property
    def estimate_over_peak(self) -> float:
        return self.estimate_bytes / self.peak_bytes

    def to_json(self) -> str:
        out = dataclasses.asdict(self) | {"estimate_over_peak": round(self.estimate_over_peak, 3)}
        return json.dumps(out, indent=2) + "\n"


def experiments() -> list[str]:
    """The named experiments whose hardware profile is a GPU or a TPU."""
    return [name for name in golden.experiment_names()
            if load_resolved([f"+experiment={name}"]).hardware.platform in ACCELERATORS]


def compile_entry(name: str) -> tuple[Entry, CompiledMemory]:
    """Compile experiment `name` for its target now (ConfigError if it cannot or does not fit)."""
    config = load_resolved([f"+experiment={name}"])
    memory, plan = compiled_memory(config), make_plan(config)
    compiler = ", ".join(f"{p} {importlib.metadata.version(p)}"
                         for p in COMPILERS[config.hardware.platform])
    entry = Entry(experiment=name, target=memory.target, device_kind=memory.device_kind,
                  compiler=compiler, kernel=config.kernel.name.value, remat=config.remat.policy.value,
                  argument_bytes=memory.argument_bytes, output_bytes=memory.output_bytes,
                  temp_bytes=memory.temp_bytes, alias_bytes=memory.alias_bytes,
                  peak_bytes=memory.peak_bytes, estimate_bytes=plan.memory.total,
                  flops_per_token=plan.flops_per_token)
    return entry, memory


def path(name: str, golden_dir: Path = golden.GOLDEN_DIR) -> Path:
    return golden_dir / f"{name}{SUFFIX}"


def read(name: str, golden_dir: Path = golden.GOLDEN_DIR) -> Entry:
    fields = json.loads(path(name, golden_dir).read_text())
    fields.pop("estimate_over_peak")
    return Entry(**fields)
