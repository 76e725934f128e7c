"""The end-of-sweep summary: a Hydra callback (conf/train.yaml, hydra.callbacks) that reads each
point's run directory and writes, in the sweep directory, `summary.csv`, `summary.md` (also
printed) and `loss_curves.png`.

It reads only files (each job's `.hydra/overrides.yaml`, `summary.json`, `metrics.jsonl`), in
`on_multirun_end`, which Hydra calls in the launching process once every job has returned, so
it works the same with the basic, joblib and submitit launchers.

Each point's directory is named by the overrides the sweep varies, flat
(`model.ffn=gelu,optim.lr=0.001`; `hydra.sweep.subdir` in conf/train.yaml), so the same sweep
run again finds every point's checkpoints and each point resumes alone. Two resolvers make
that work with any launcher: `hydralearn.as_launched` returns a value as the launching process
resolved it (a cached resolver: Hydra copies the launching config's resolver cache into every
point's config, as it does for `${now:}`), and `hydralearn.point_dir` picks the swept overrides.
"""

import csv
import hashlib
import io
import json
import logging
import time
from pathlib import Path

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from hydralearn.config.run_dir import RunDir

log = logging.getLogger(__name__)

METRICS = ("steps", "train_loss", "eval_loss", "tokens_per_s", "mfu", "wall_s")
MAX_DIR_NAME = 120  # well under file systems' 255-byte limit on one path component


def point_dir(overrides, launched, params) -> str:
    """A point's directory name: its overrides of the keys the launching command swept (all of
    them where none is known), sorted, with `/` flattened to `.` so groups do not nest."""
    parser = OverridesParser.create()
    swept = {o.get_key_element() for o in parser.parse_overrides(list(launched or []))
             if o.is_sweep_override()} | set(params or {})
    mine = list(overrides)
    chosen = [item for item in mine if parser.parse_override(item).get_key_element() in swept]
    name = ",".join(sorted(chosen or mine)).replace("/", ".") or "default"
    if len(name) > MAX_DIR_NAME:
        name = f"{name[:MAX_DIR_NAME - 9]}-{hashlib.sha1(name.encode()).hexdigest()[:8]}"
    return name


def _plain(value):
    return OmegaConf.to_container(value) if OmegaConf.is_config(value) else value


def register_resolvers() -> None:
    if not OmegaConf.has_resolver("hydralearn.as_launched"):
        OmegaConf.register_new_resolver("hydralearn.as_launched", _plain, use_cache=True)
        OmegaConf.register_new_resolver("hydralearn.point_dir", point_dir)


register_resolvers()  # wherever Hydra resolves a sweep's directories, this module is imported


class SweepSummary(Callback):
    def __init__(self) -> None:
        self.started = 0.0

    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        # A sweep dir may hold points of earlier sweeps (same name): summarize only this one's.
        self.started = time.time()
        # Resolve the point directory once here, in the launching process, so the swept
        # overrides are in the resolver cache that Hydra copies into every point's config.
        OmegaConf.select(config, "hydra.sweep.subdir")

    def on_multirun_end(self, config: DictConfig, **kwargs) -> None:
        sweep_dir = Path(str(config.hydra.sweep.dir))
        table = summarize(sweep_dir, since=self.started)
        if table:
            print(f"sweep summary ({len(table)} points), written to {sweep_dir}:\n"
                  f"{markdown(table)}")


def job_dirs(sweep_dir: Path, *, since: float = 0.0) -> list[Path]:
    """Every point's run directory (Hydra wrote .hydra/ there at or after `since`), in job order."""
    marks = [p for p in sweep_dir.glob("**/.hydra/overrides.yaml") if p.stat().st_mtime >= since - 1]
    return [p.parent.parent for p in sorted(marks, key=lambda p: (_job_num(p.parent), str(p)))]


def _job_num(hydra_dir: Path) -> int:
    try:
        return int(OmegaConf.load(hydra_dir / "hydra.yaml").hydra.job.num)
    except Exception:  # noqa: BLE001 - a point without Hydra's record sorts last
        return 1 << 30


def summarize(sweep_dir: Path, *, since: float = 0.0) -> list[dict]:
    """Write summary.csv, summary.md and loss_curves.png; return the table's rows."""
    dirs = job_dirs(sweep_dir, since=since)
    if not dirs:
        return []
    points = [_overrides(d) for d in dirs]
    varying = sorted({k for p in points for k, v in p.items()
                      if any(q.get(k) != v for q in points)})
    rows = []
    for d, point in zip(dirs, points):
        summary = _read_json(RunDir(d).summary)
        row = {"job": _job_num(RunDir(d).hydra), **{k: point.get(k, "") for k in varying}}
        row |= {m: summary.get(m, "") for m in METRICS}
        row |= {"status": _status(summary), "reason": summary.get("reason", ""),
                "run_dir": str(d.relative_to(sweep_dir))}
        rows.append(row)
    (sweep_dir / "summary.csv").write_text(_csv(rows))
    (sweep_dir / "summary.md").write_text(markdown(rows) + "\n")
    _plot(sweep_dir / "loss_curves.png", dirs, [_label(p, varying) for p in points])
    return rows


def failures(sweep_dir: Path, *, since: float) -> list[str]:
    """'<point dir>: <reason>' for each point of the sweep started at `since` that failed."""
    out = []
    for d in job_dirs(sweep_dir, since=since):
        summary = _read_json(RunDir(d).summary)
        if _status(summary) not in SUCCEEDED:
            out.append(f"{d.relative_to(sweep_dir)}: {summary.get('reason') or _status(summary)}")
    return out


# A point's own status (runtime.trainer.RunStatus) where it wrote one; "failed" from
# runtime/run.record_failure.
SUCCEEDED = ("completed", "already_complete", "preempted")


def _status(summary: dict) -> str:
    return summary.get("status", "completed") if summary else "failed: no summary.json"


def markdown(rows: list[dict]) -> str:
    columns = list(rows[0])
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_cell(r[c]) for c in columns) + " |" for r in rows]
    return "\n".join(lines)


def _csv(rows: list[dict]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def _cell(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _overrides(run_dir: Path) -> dict[str, str]:
    items = OmegaConf.to_container(OmegaConf.load(RunDir(run_dir).hydra / "overrides.yaml"))
    return dict(item.split("=", 1) for item in items if "=" in item)


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def _label(point: dict, varying: list[str]) -> str:
    return " ".join(f"{k}={point.get(k, '')}" for k in varying) or "run"


def _curve(run_dir: Path) -> tuple[list[int], list[float]]:
    steps, losses = [], []
    path = RunDir(run_dir).metrics
    for line in path.read_text().splitlines() if path.exists() else []:
        record = json.loads(line)
        if isinstance(record.get("loss"), (int, float)):
            steps.append(record["step"])
            losses.append(record["loss"])
    return steps, losses


def _plot(path: Path, dirs: list[Path], labels: list[str]) -> None:
    import matplotlib
    matplotlib.use("Agg")  # headless: no display on training hosts
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5))
    for d, label in zip(dirs, labels):
        steps, losses = _curve(d)
        if steps:
            ax.plot(steps, losses, label=label)
    ax.set(xlabel="step", ylabel="train loss (nats/token)", title="sweep: training loss")
    if ax.lines:
        ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
