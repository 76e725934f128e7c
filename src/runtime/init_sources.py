"""The weights a new run starts from (conf/init), checked before its run directory is made:
a refused start leaves nothing behind. Cheap checks only (directory listings, safetensors
headers, tensor names); what needs the weights themselves (shapes, checksums) is checked as
they are read."""

from pathlib import Path

from hydralearn.config.run_dir import RunDir, split_step
from hydralearn.config.schema import TrainConfig
from hydralearn.errors import ConfigError


def check(config: TrainConfig, *, run_dir: Path) -> None:
    """ConfigError (one line per problem) if init.hf or init.checkpoint cannot start the run.
    A run with checkpoints of its own resumes from them and reads neither."""
    from hydralearn.runtime.checkpoint import committed_steps

    init = config.init
    if not (init.hf or init.checkpoint) or committed_steps(RunDir(run_dir).checkpoints):
        return
    if init.hf:
        from hydralearn.interop.hf import weight_problems

        # As config.json's problems are named (cli/init_hf.py): `init.hf=<dir>: ...`.
        problems = [f"init.hf={init.hf}: {_after(line, init.hf)}"
                    for line in weight_problems(init.hf, config.model)]
    else:
        from hydralearn.runtime.restore import locate

        try:
            locate(*split_step(init.checkpoint))
            problems = []
        except ConfigError as e:
            problems = [f"init.checkpoint={init.checkpoint}: {line}" for line in e.errors]
    if problems:
        raise ConfigError(problems)


def _after(line: str, directory: str) -> str:
    for prefix in (f"{directory}: ", f"{Path(directory)}: "):
        if line.startswith(prefix):
            return line[len(prefix):]
    return line
