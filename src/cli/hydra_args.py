"""Hydra's command-line flags, parsed as Hydra parses them, so hydralearn can compose and check
a run before Hydra starts it. Hydra keeps its own parser private; this one declares the same
flags (tests/cli compares them with `--hydra-help`)."""

import argparse
import itertools

from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import ValueType
from hydra.errors import HydraException, OverrideParseException
from omegaconf import DictConfig

from hydralearn.config import compose as compose_config
from hydralearn.config.store import is_schema
from hydralearn.errors import ConfigError

INFO_CHOICES = ["all", "config", "defaults", "defaults-tree", "plugins", "searchpath"]


class _Parser(argparse.ArgumentParser):
    """argparse's own error is a usage block: a user error here is one line, like the rest."""

    def error(self, message: str):
        raise ConfigError([f"{message} (see {self.prog} --help)"])


def parser(prog: str) -> argparse.ArgumentParser:
    p = _Parser(prog=prog, add_help=False)
    p.add_argument("overrides", nargs="*")
    p.add_argument("--help", "-h", action="store_true")
    p.add_argument("--hydra-help", action="store_true")
    p.add_argument("--version", action="store_true")
    p.add_argument("--cfg", "-c", choices=["job", "hydra", "all"])
    p.add_argument("--resolve", action="store_true")
    p.add_argument("--package", "-p")
    p.add_argument("--run", "-r", action="store_true")
    p.add_argument("--multirun", "-m", action="store_true")
    p.add_argument("--shell-completion", "-sc", action="store_true")
    p.add_argument("--config-path", "-cp")
    p.add_argument("--config-name", "-cn")
    p.add_argument("--config-dir", "-cd")
    p.add_argument("--experimental-rerun")
    p.add_argument("--info", "-i", const="all", nargs="?", choices=INFO_CHOICES)
    return p


def parse(argv: list[str], prog: str = "hydralearn-train") -> argparse.Namespace:
    """Flags and overrides in any order (`name=x --config-dir d model=y`); ConfigError."""
    return parser(prog).parse_intermixed_args(argv)


# Every flag of `parser` by its attribute: switches, then those with a value.
_SWITCHES = {"help": "--help", "hydra_help": "--hydra-help", "version": "--version",
             "resolve": "--resolve", "run": "--run", "multirun": "--multirun",
             "shell_completion": "--shell-completion"}
_VALUED = {"cfg": "--cfg", "package": "--package", "config_path": "--config-path",
           "config_name": "--config-name", "config_dir": "--config-dir",
           "experimental_rerun": "--experimental-rerun", "info": "--info"}


def for_hydra(args: argparse.Namespace) -> list[str]:
    """The command line in the order Hydra's own parser (hydra.main) reads: its flags first
    (`--flag=value`, so `--info` takes no override for its value), then every override.
    Hydra's parser leaves overrides after a flag's value unrecognised."""
    flags = [flag for attr, flag in _SWITCHES.items() if getattr(args, attr)]
    flags += [f"{flag}={getattr(args, attr)}" for attr, flag in _VALUED.items()
              if getattr(args, attr) is not None]
    return [*flags, *args.overrides]


def add_location_flags(p: argparse.ArgumentParser) -> None:
    """-cp, -cn and --config-dir for the tools beside hydralearn-train (plan, diff, schema)."""
    p.add_argument("--config-path", "-cp", help="the primary config's directory (as Hydra's -cp)")
    p.add_argument("--config-name", "-cn", help="the primary config (default: train)")
    p.add_argument("--config-dir", "-cd", help="an extra config directory (as Hydra's --config-dir)")


def location(args: argparse.Namespace) -> compose_config.Location:
    return compose_config.Location(config_path=args.config_path,
                                   config_name=args.config_name or "train",
                                   config_dir=args.config_dir)


def hands_over(args: argparse.Namespace) -> bool:
    """Commands that only Hydra serves and that run no job: help, info, completion."""
    return bool(args.help or args.hydra_help or args.version or args.info or args.shell_completion)


def check_modes(args: argparse.Namespace) -> None:
    """Hydra runs one mode per command (its own message is a traceback). Hydra's rerun unpickles
    a saved file: pickle runs any code it names, past the `_target_` allowlist."""
    if args.experimental_rerun:
        raise ConfigError(["--experimental-rerun is refused: it unpickles a file, which can run any "
                           "code; run the same command again instead (name=<run> resumes that run)"])
    modes = [flag for flag, given in (("--run", args.run), ("--multirun", args.multirun),
                                      ("--cfg", args.cfg)) if given]
    if len(modes) > 1:
        raise ConfigError([f"{' and '.join(modes)} cannot be combined: give one of --run, "
                           "--multirun, --cfg, --info and --shell-completion"])


def shared_overrides(overrides: list[str]) -> list[str]:
    """The overrides every point of a sweep has (Hydra's launching config composes these)."""
    return [o for o in overrides if not _is_sweep(o)]


def sweep_points(overrides: list[str], where: compose_config.Location, *,
                 shared: DictConfig | None = None) -> list[list[str]]:
    """The overrides of every job of a multirun, as Hydra's basic sweeper expands them:
    `hydra.sweeper.params` then the command line, each comma list, range or glob one axis of a
    cartesian product. `shared`: the config the points share (`shared_overrides` composed),
    if the caller has it; else it is composed here."""
    plain = shared_overrides(overrides)
    sweeper = (shared if shared is not None else compose_config.compose(plain, where)).hydra.sweeper
    if not str(sweeper.get("_target_", "")).endswith(".BasicSweeper"):
        return [plain]  # another sweeper chooses its points itself: check what they share
    params = sweeper.get("params") or {}
    with compose_config.hydra_session(where):
        loader = GlobalHydra.instance().config_loader()
        try:
            parsed = OverridesParser.create(config_loader=loader).parse_overrides(
                [f"{k}={v}" for k, v in params.items()] + list(overrides))
        except OverrideParseException as e:
            raise ConfigError([f"cannot parse override: {str(e).strip().splitlines()[0]}"]) from None
        axes: dict[str, list[str]] = {}
        for o in parsed:
            key = o.get_key_element()
            if not o.is_sweep_override():
                axes[key] = [f"{key}={o.get_value_element_as_str()}"]
            elif o.is_discrete_sweep():
                axes[key] = [f"{key}={v}" for v in o.sweep_string_iterator()]
                _check_glob(o, axes[key])
            else:
                raise ConfigError([f"{o.input_line}: the basic sweeper takes lists, choice, range, "
                                   "glob and tag sweeps; an interval sweep needs a sweeper plugin "
                                   "that samples it (e.g. hydra/sweeper=optuna)"])
    return [list(point) for point in itertools.product(*axes.values())]


def _check_glob(override, expanded: list[str]) -> None:
    """A group's schemas are options too (`base_<name>`, so YAML options can extend them);
    `glob(*)` would run them as points."""
    schemas = [v.partition("=")[2] for v in expanded if is_schema(v.partition("=")[2])]
    if override.value_type is ValueType.GLOB_CHOICE_SWEEP and schemas:
        key = override.get_key_element()
        raise ConfigError([f"{override.input_line}: the glob also matches the schemas "
                           f"{', '.join(schemas)}; leave them out with {key}='glob(*,exclude=base_*)'"])


def _is_sweep(override: str) -> bool:
    try:
        return OverridesParser.create().parse_override(override).is_sweep_override()
    except HydraException:  # parse_override raises the base class; sweep_points names the error
        return False
