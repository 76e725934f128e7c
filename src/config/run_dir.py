"""Where a run keeps its files. Every reader and writer of a run directory goes through this
layout, so each name is spelled here once:

    <run dir>/resolved_config.yaml      the config the run resolved, written when it starts
              checkpoints/<step>/       the saved steps (runtime/checkpoint.py), each with the
                                        eval.json of hydralearn-eval on it
              metrics.jsonl, tensorboard/, profile/   metric sinks and traces
              summary.json              how the run ended
              goodput.json              where each attempt's wall time went (runtime/goodput.py)
              run.lock                  the live holder (runtime/lock.py)
              .hydra/                   Hydra's record of the job (overrides.yaml, ...)
"""

import dataclasses
import re
from pathlib import Path

from hydralearn.errors import ConfigError

EVAL_RESULTS = "eval.json"  # beside what was evaluated: a checkpoint or a Hugging Face directory


def name_errors(name: str) -> list[str]:
    """Why `name` cannot name a run directory (empty if it can): it must be one plain path
    component, so that runs/<name> stays under runs/. hydra.run.dir is the escape hatch."""
    fix = "use a plain name such as name=my_run, or set hydra.run.dir=<dir> to choose a directory"
    if not name or not name.strip():
        return [f"name={name!r} is empty; {fix}"]
    if "/" in name or "\\" in name:
        return [f"name={name!r} contains a path separator; {fix}"]
    if name in (".", ".."):
        return [f"name={name!r} is not a plain name; {fix}"]
    if not name.isprintable():  # a newline or tab, say: no directory or pod command takes it
        return [f"name={name!r} contains a control character; {fix}"]
    return []


@dataclasses.dataclass(frozen=True)
class RunDir:
    path: Path

    def __post_init__(self):
        object.__setattr__(self, "path", Path(self.path))  # a str from a caller is fine

    @classmethod
    def of(cls, where: str | Path) -> "RunDir":
        """The run directory named by itself or by its checkpoints directory."""
        path = Path(where)
        return cls(path.parent if path.name == "checkpoints" else path)

    @property
    def resolved_config(self) -> Path:
        return self.path / "resolved_config.yaml"

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    def checkpoint(self, step: int) -> Path:
        return self.checkpoints / str(step)

    def eval_results(self, step: int) -> Path:
        return self.checkpoint(step) / EVAL_RESULTS

    @property
    def metrics(self) -> Path:
        return self.path / "metrics.jsonl"

    @property
    def tensorboard(self) -> Path:
        return self.path / "tensorboard"

    @property
    def profile(self) -> Path:
        return self.path / "profile"

    @property
    def summary(self) -> Path:
        return self.path / "summary.json"

    @property
    def goodput(self) -> Path:
        return self.path / "goodput.json"

    @property
    def lock(self) -> Path:
        return self.path / "run.lock"

    @property
    def hydra(self) -> Path:
        return self.path / ".hydra"

    def is_run(self) -> bool:
        """Whether a run started here (it wrote its resolved config)."""
        return self.resolved_config.is_file()


_WITH_STEP = re.compile(r"^(?P<path>.+?)(@(?P<step>[^@/]*))?$")


def split_step(where: str) -> tuple[Path, int | None]:
    """`runs/x@500` -> (runs/x, 500); `runs/x` -> (runs/x, None); ConfigError for `@abc`."""
    match = _WITH_STEP.match(where)
    path, step = Path(match["path"]), match["step"]
    if step is not None and not step.isdigit():
        raise ConfigError([f"{where}: the step after '@' must be a number, e.g. {path}@100"])
    return path, None if step is None else int(step)
