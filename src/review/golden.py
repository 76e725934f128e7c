"""Golden files of the named experiments (conf/experiment/*.yaml), so every config change
shows up in review as a readable diff.

Per experiment, in tests/golden/: `<name>.config.yaml`, the resolved config (every auto made
concrete for the experiment's stated hardware, keys sorted), and `<name>.params.txt`, one row
per parameter: path, shape, dtype, logical axes, PartitionSpec and the shard each device holds
on the experiment's mesh. Both are computed abstractly (no devices), deterministically.
"""

import dataclasses
import difflib
from pathlib import Path

from omegaconf import OmegaConf

from hydralearn.config import compose as compose_config
from hydralearn.compose.build import abstract_params
from hydralearn.config.compose import to_container
from hydralearn.review.plan import load_resolved, param_table, planned_device_count

GOLDEN_DIR = Path(__file__).resolve().parent.parent.parent / "tests" / "golden"
REFRESH_COMMAND = ".venv/bin/python scripts/refresh_goldens.py"


@dataclasses.dataclass(frozen=True)
class Drift:
    path: Path
    diff: str  # unified diff, golden -> now ("" when the golden file is missing)


def experiment_names(conf_dir: Path | None = None) -> list[str]:
    conf_dir = Path(conf_dir or compose_config.CONF_DIR)
    return sorted(p.stem for p in (conf_dir / "experiment").glob("*.yaml"))


def render(name: str) -> dict[str, str]:
    """File name -> text of the goldens of experiment `name`, from the current conf/."""
    config = load_resolved([f"+experiment={name}"])
    header = f"# Golden file of conf/experiment/{name}.yaml. Refresh: {REFRESH_COMMAND}\n"
    resolved = OmegaConf.to_yaml(OmegaConf.create(to_container(config)), sort_keys=True)
    _, params = abstract_params(config)
    mesh = " ".join(f"{k}={v}" for k, v in config.mesh.axes.items())
    table = [("path", "shape", "dtype", "logical_axes", "spec", "per_device")]
    table += [(r.path, _shape(r.shape), r.dtype, "(" + ", ".join(a or "-" for a in r.logical_axes) + ")",
               r.spec, _shape(r.shard_shape)) for r in param_table(params, config)]
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    rows = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in table]
    params_header = f"# mesh: {mesh} ({planned_device_count(config)} devices)\n"
    return {f"{name}.config.yaml": header + resolved,
            f"{name}.params.txt": header + params_header + "\n".join(rows) + "\n"}


def drift(name: str, golden_dir: Path = GOLDEN_DIR) -> list[Drift]:
    """The golden files of `name` that differ from what conf/ gives now."""
    out = []
    for file_name, text in render(name).items():
        path = golden_dir / file_name
        if not path.exists():
            out.append(Drift(path=path, diff=""))
            continue
        old = path.read_text()
        if old != text:
            lines = difflib.unified_diff(old.splitlines(True), text.splitlines(True),
                                         f"{file_name} (golden)", f"{file_name} (now)")
            out.append(Drift(path=path, diff="".join(lines)))
    return out


def refresh(golden_dir: Path = GOLDEN_DIR) -> list[Path]:
    """Rewrite every experiment's goldens and delete goldens of removed experiments."""
    golden_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name in experiment_names():
        for file_name, text in render(name).items():
            (golden_dir / file_name).write_text(text)
            written.append(golden_dir / file_name)
    for stale in set(golden_dir.glob("*.config.yaml")) | set(golden_dir.glob("*.params.txt")):
        if stale not in written:
            stale.unlink()
    return written


def _shape(shape: tuple[int, ...]) -> str:
    return str(tuple(shape))
