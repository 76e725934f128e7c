"""`hydralearn-train`: compose, validate, resolve, build and train; a Hydra app.

Every Hydra flag works (--cfg job, -m, --help, --info, -cn, -cp, --config-dir, +key=value,
~key). A run is composed once and checked (types, allowlist, cross-field rules, its name);
its run directory (runs/<name>, deterministic) is claimed (created, proven writable, locked
against a second process), the run is resolved for the devices present and checked again
(resume rule, memory); only then does Hydra's job runner write into it: `resolved_config.yaml`
(every auto concrete), `checkpoints/`, `metrics.jsonl`, `tensorboard/`, `summary.json`.
Running the same command again resumes from the newest intact checkpoint. A multirun checks
every point first, then Hydra's sweeper and launcher run them.

Exit codes: the table in hydralearn/exit_codes.py.
"""

import logging
import sys
import time
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from hydralearn import CONF_DIR
from hydralearn.cli import app_help, hydra_args, init_hf, sweep
from hydralearn.cli.errors import exit_with
from hydralearn.config import compose as compose_config
from hydralearn.config.schema import TrainConfig
from hydralearn.config.store import register_schemas
from hydralearn.config.validate import validate, validate_hydra
from hydralearn.errors import ConfigError
from hydralearn.exit_codes import FAILURE_EXIT, INTERRUPTED_EXIT
from hydralearn.runtime.errors import INTERRUPTED_LINE


def main() -> None:
    # A log file on a full disk must not print a traceback per record (the failure is reported
    # once); the logging docs' advice for production.
    logging.raiseExceptions = False
    try:
        args = hydra_args.parse(sys.argv[1:])
        sys.argv[1:] = hydra_args.for_hydra(args)  # as hydra.main reads it, where it takes over
        # Hydra's own commands compose too: the schemas and conf/'s place must be known to Hydra.
        register_schemas()
        compose_config.register_locations()
        hydra_args.check_modes(args)
        where = hydra_args.location(args)
        if args.help:
            show_help(args, where)
        elif hydra_args.hands_over(args):
            if args.hydra_help:  # Hydra's help configures logging from the config
                validate_hydra(compose_config.compose(args.overrides, where))
            _hydra_main()  # info, completion, Hydra's own help: no job runs
        elif args.cfg:
            show_config(args, where)
        elif args.multirun:
            run_sweep(args.overrides, where)
        else:
            sys.exit(run_once(args.overrides, where))
    except ConfigError as e:
        exit_with(e)
    except KeyboardInterrupt:  # composing or checking a sweep's points (a run reports its own)
        print(f"hydralearn: error: {INTERRUPTED_LINE}", file=sys.stderr)
        sys.exit(INTERRUPTED_EXIT)


def run_once(overrides: list[str], where: compose_config.Location) -> int:
    """Compose and check, then the run (runtime/run.py); the exit code (user failures in one line)."""
    from hydralearn.runtime import run
    from hydralearn.runtime.hydra_job import Record

    run_dir = None
    try:
        with compose_config.hydra_session(where):
            cfg = init_hf.composed(overrides, lambda o: compose_config.compose_in_session(o, where))
            config = validate(cfg)
            # From here the TrainConfig is the config; Hydra keeps only its own settings.
            record = Record.of(cfg)
            del cfg
            run_dir = record.run_dir
            return run.execute(config, record=record, config_name=where.config_name)
    except ConfigError:
        raise
    except BaseException as e:  # noqa: BLE001 - user-facing failures end in one line
        found = run.failure_line(e, run_dir or Path.cwd())
        if found is None or _full_error():
            raise
        print(f"hydralearn: error: {found[0]}", file=sys.stderr)
        return found[1]


def _full_error() -> bool:
    import os

    return os.environ.get("HYDRA_FULL_ERROR") == "1"


def run_sweep(overrides: list[str], where: compose_config.Location) -> None:
    """Every point checked, then Hydra's sweeper and launcher run them (`_hydra_main`); exit
    status 1 if a point failed. Points report through their run directories' summary.json,
    which any launcher leaves where this process can read it."""
    shared = compose_config.compose(hydra_args.shared_overrides(overrides), where)
    CHECKED.update(check_points(overrides, where, shared=shared))
    # Each composition sets Hydra's global HydraConfig, and Hydra's sweeper resolves the
    # sweep's `${hydra:...}` (the name in hydra.sweep.dir) against it: the shared one, not the
    # last point checked.
    HydraConfig.instance().set_config(shared)
    sweep_dir = Path(str(shared.hydra.sweep.dir))
    started = time.time()
    _hydra_main()
    failed = sweep.failures(sweep_dir, since=started)
    if failed:
        print(f"hydralearn: error: {len(failed)} point(s) of the sweep failed (summary in "
              f"{sweep_dir}/summary.md): {'; '.join(failed)}", file=sys.stderr)
        sys.exit(FAILURE_EXIT)


# The points this process checked, by their overrides: a point Hydra's launcher runs here is
# not validated again (a launcher in another process or machine validates its own).
CHECKED: dict[frozenset[str], TrainConfig] = {}


def _job_key(overrides) -> frozenset[str]:
    """A point by its overrides as Hydra records a job's (`hydra.overrides.task`: none of Hydra's own)."""
    return frozenset(o for o in overrides if not o.lstrip("+~").startswith(("hydra.", "hydra/")))


def check_points(overrides: list[str], where: compose_config.Location, *,
                 shared: DictConfig) -> dict[frozenset[str], TrainConfig]:
    """Every point of the sweep composed and validated before Hydra launches any."""
    points = hydra_args.sweep_points(overrides, where, shared=shared)
    errors, checked = [], {}
    for point in points:
        try:
            config = validate(init_hf.composed(point, lambda o: compose_config.compose(o, where),
                                               adopt=False))
            checked[_job_key(point)] = config
        except ConfigError as e:
            # Name a point by the overrides that vary across points, not the shared ones.
            swept = [o for o in point if any(o not in other for other in points)]
            errors += [f"[{' '.join(swept or point)}] {line}" for line in e.errors]
    if errors:
        raise ConfigError(errors)
    return checked


def show_help(args, where: compose_config.Location) -> None:
    """`--help` from Hydra's help config, composed once; Hydra's own where the template names
    what only Hydra fills. Its group listing would take seconds (config/groups.py)."""
    cfg = compose_config.compose(args.overrides, where)
    validate_hydra(cfg)  # a template or a handler named there must be allowlisted all the same
    text = app_help.render(cfg, resolve=args.resolve)
    if text is None:
        _hydra_main()
    else:
        print(text)


def show_config(args, where: compose_config.Location) -> None:
    """`--cfg job|hydra|all [--package P] [--resolve]`, as Hydra prints it, once validated."""
    cfg = init_hf.composed(args.overrides, lambda o: compose_config.compose(o, where))
    validate(cfg)
    if args.cfg == "job":
        cfg = OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"])
    elif args.cfg == "hydra":
        cfg = OmegaConf.masked_copy(cfg, ["hydra"])
    package = None if args.package in (None, "_global_") else args.package
    node = cfg if package is None else OmegaConf.select(cfg, package)
    if node is None:
        raise ConfigError([f"--package {package}: no such package in the config"])
    if not OmegaConf.is_config(node):
        print(node)
        return
    if package is not None:
        print(f"# @package {package}")
    if args.resolve:
        try:
            OmegaConf.resolve(node)
        except OmegaConfBaseException as e:  # e.g. hydra.* keys that only a running job has
            raise ConfigError([f"--cfg {args.cfg} --resolve: {str(e).splitlines()[0]} (the hydra "
                               "node is resolved only as part of a run; try --cfg job)"]) from None
    sys.stdout.write(OmegaConf.to_yaml(node))


@hydra.main(config_path=str(CONF_DIR), config_name="train", version_base="1.3")
def _hydra_main(cfg: DictConfig) -> None:
    """One point of a multirun (checked before launch), in its own claimed directory
    (runtime/run.py execute_point); the sweep summary reports a failed one."""
    from hydralearn.runtime import run

    checked = CHECKED.get(_job_key(HydraConfig.get().overrides.task))
    run.execute_point(lambda: checked or validate(cfg),
                      run_dir=Path(HydraConfig.get().runtime.output_dir))


if __name__ == "__main__":
    main()
