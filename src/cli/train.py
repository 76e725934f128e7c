"""`hydralearn-train`: compose, validate, resolve, build and train; a Hydra app.

Every Hydra flag works (--cfg job, -m, --help, --info, -cn, -cp, --config-dir, +key=value,
~key). A run is composed once, checked (types, allowlist, cross-field rules, the devices
present, the resume rule) and only then given its run directory (runs/<name>,
deterministic): `resolved_config.yaml` (every auto concrete), `checkpoints/`, `metrics.jsonl`,
`tensorboard/` and `summary.json`. Running the same command again resumes from the newest
checkpoint. A multirun checks every point first, then Hydra's sweeper and launcher run them.
"""

import logging
import sys
import time
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from hydralearn import CONF_DIR
from hydralearn.cli import hydra_args, hydra_job, sweep
from hydralearn.cli.errors import exit_with
from hydralearn.compose import config as compose_config
from hydralearn.compose.store import register_schemas
from hydralearn.compose.validate import validate
from hydralearn.errors import ConfigError

logger = logging.getLogger(__name__)
SWEEP_FAILED_EXIT = 1


def main() -> None:
    args = hydra_args.parse(sys.argv[1:])
    # Hydra's own commands compose too: the schemas and conf/'s place must be known to Hydra.
    register_schemas()
    compose_config.register_locations()
    if hydra_args.hands_over(args):
        _hydra_main()  # help, info, completion: Hydra's own, no job runs
        return
    try:
        hydra_args.check_modes(args)
        where = hydra_args.location(args)
        if args.cfg:
            show_config(args, where)
        elif args.multirun:
            run_sweep(args.overrides, where)
        else:
            run_once(args.overrides, where)
    except ConfigError as e:
        exit_with(e)


def run_once(overrides: list[str], where: compose_config.Location) -> None:
    from hydralearn.cli.run import prepare, train_run, user_failure

    with compose_config.hydra_session(where):
        cfg = compose_config.compose_in_session(overrides, where)
        config = validate(cfg)
        run_dir = Path(OmegaConf.select(cfg, "hydra.run.dir")).absolute()
        prepared = prepare(config, run_dir=run_dir)
        if prepared.complete:  # nothing to do, so nothing in the run directory is touched
            print(f"{run_dir} is already complete; set name=<new name> for a new run")
            return
        try:
            hydra_job.run(cfg, lambda _: train_run(prepared, run_dir=run_dir),
                          config_name=where.config_name)
        except ConfigError:
            raise
        except Exception as e:  # noqa: BLE001 - user-facing failures end in one line
            failure = user_failure(e)
            if failure is None:
                raise
            print(f"hydralearn: error: {failure.message}", file=sys.stderr)
            sys.exit(failure.exit_code)


def run_sweep(overrides: list[str], where: compose_config.Location) -> None:
    """Every point checked, then Hydra's sweeper and launcher run them (`_hydra_main`); exit
    status 1 if a point failed. Points report through their run directories' summary.json,
    which any launcher leaves where this process can read it."""
    check_points(overrides, where)
    sweep_dir = Path(str(compose_config.compose(hydra_args.shared_overrides(overrides), where).hydra.sweep.dir))
    started = time.time()
    _hydra_main()
    failed = sweep.failures(sweep_dir, since=started)
    if failed:
        print(f"hydralearn: error: {len(failed)} point(s) of the sweep failed (summary in "
              f"{sweep_dir}/summary.md): {'; '.join(failed)}", file=sys.stderr)
        sys.exit(SWEEP_FAILED_EXIT)


def check_points(overrides: list[str], where: compose_config.Location) -> None:
    """Every point of the sweep composed and validated before Hydra launches any."""
    points = hydra_args.sweep_points(overrides, where)
    errors = []
    for point in points:
        try:
            validate(compose_config.compose(point, where))
        except ConfigError as e:
            # Name a point by the overrides that vary across points, not the shared ones.
            swept = [o for o in point if any(o not in other for other in points)]
            errors += [f"[{' '.join(swept or point)}] {line}" for line in e.errors]
    if errors:
        raise ConfigError(errors)


def show_config(args, where: compose_config.Location) -> None:
    """`--cfg job|hydra|all [--package P] [--resolve]`, as Hydra prints it, once validated."""
    cfg = compose_config.compose(args.overrides, where)
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
        OmegaConf.resolve(node)
    sys.stdout.write(OmegaConf.to_yaml(node))


@hydra.main(config_path=str(CONF_DIR), config_name="train", version_base="1.3")
def _hydra_main(cfg: DictConfig) -> None:
    """One point of a multirun (checked before launch). A failing point is recorded in its run
    directory and the sweep goes on; the sweep's exit status reports it (cli/sweep.py)."""
    from hydralearn.cli.run import prepare, record_failure, train_run, user_failure

    run_dir = Path(HydraConfig.get().runtime.output_dir)
    try:
        prepared = prepare(validate(cfg), run_dir=run_dir)
        if not prepared.complete:
            train_run(prepared, run_dir=run_dir)
    except Exception as e:  # noqa: BLE001 - a failed point must not end the sweep
        failure = user_failure(e)
        message = failure.message if failure else f"{type(e).__name__}: {e}"
        logger.error("sweep point failed: %s", message)
        record_failure(run_dir, message)


if __name__ == "__main__":
    main()
