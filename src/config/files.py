"""Config files read with one-line errors: a file that is unreadable, not YAML, or not a
mapping is named with its cause, never answered with a parser's traceback."""

from pathlib import Path

import yaml
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from hydralearn.errors import ConfigError


def read_mapping(path: Path) -> dict:
    """The YAML mapping in `path` as plain containers (interpolations resolved).

    ConfigError (one line: the path and the cause) if it cannot be read, is not valid YAML or
    UTF-8, or holds something other than a mapping.
    """
    try:
        loaded = OmegaConf.load(path)
        container = OmegaConf.to_container(loaded, resolve=True)
    except OSError as e:
        raise ConfigError([f"{path}: cannot read it: {e.strerror or e}"]) from None
    except UnicodeDecodeError as e:
        raise ConfigError([f"{path}: not a text file (byte {e.start} is not UTF-8)"]) from None
    except yaml.YAMLError as e:
        raise ConfigError([yaml_problem(e, path)]) from None
    except OmegaConfBaseException as e:
        raise ConfigError([f"{path}: cannot read it as a config: {str(e).strip().splitlines()[0]}"]) from None
    if not isinstance(container, dict) or not container:
        found = f"a {type(container).__name__}" if container else "nothing"
        raise ConfigError([f"{path}: not a config (a YAML mapping of keys was expected, it holds {found})"])
    return container


def yaml_problem(error: yaml.YAMLError, path: Path | str | None = None) -> str:
    """'file.yaml:3:12: invalid YAML: expected ',' or ']', but got '<stream end>''."""
    mark = getattr(error, "problem_mark", None)
    where = f"{mark.name}:{mark.line + 1}:{mark.column + 1}" if mark else str(path or "<yaml>")
    problem = getattr(error, "problem", None) or str(error).strip().splitlines()[0]
    return f"{where}: invalid YAML: {problem}"
