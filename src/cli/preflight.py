"""Compose and validate every run a command line describes before Hydra launches any of them."""

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra._internal.utils import get_args_parser
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import OverrideParseException

from hydralearn.compose import config as compose_config
from hydralearn.compose.validate import ConfigError
from hydralearn.runtime.rundir import name_errors


def parse_command_line(argv: list[str]):
    """Hydra's own argument parser, so flags mean exactly what they mean to Hydra."""
    return get_args_parser().parse_args(argv)


def sweep_points(overrides: list[str]) -> list[list[str]]:
    """The override list of every point of a multirun (basic sweeper: cartesian product),
    index-aligned with `overrides`."""
    try:
        parsed = OverridesParser.create().parse_overrides(overrides)
    except OverrideParseException as e:
        raise ConfigError([f"cannot parse override: {str(e).splitlines()[0]}"]) from None
    return [point for batch in BasicSweeper.split_arguments(parsed, None) for point in batch]


def check(argv: list[str]) -> list[str]:
    """Validate every point; return argv as Hydra must receive it (see compose_normalized).

    Raises one ConfigError listing the problems of every invalid point.
    """
    args = parse_command_line(argv)
    points = sweep_points(args.overrides) if args.multirun else [args.overrides]
    errors, forced = [], set()
    for point in points:
        try:
            cfg, normalized = compose_config.compose_normalized(point)
            if problems := name_errors(compose_config.load_composed(cfg).name):
                raise ConfigError(problems)
            forced |= {i for i, o in enumerate(normalized) if o != point[i]}
        except ConfigError as e:
            # Name a sweep point by the overrides that vary across points, not the shared ones.
            swept = [o for o in point if any(o not in other for other in points)]
            prefix = f"[{' '.join(swept or point)}] " if args.multirun else ""
            errors += [prefix + line for line in e.errors]
    if errors:
        raise ConfigError(errors)
    argv = list(argv)
    for i in forced:
        argv[argv.index(args.overrides[i])] = "++" + args.overrides[i]
    return argv
