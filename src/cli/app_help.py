"""`hydralearn-train --help`: Hydra's help config (`hydra.help`: app_name, header, footer,
template) filled in as Hydra fills it, from one composition, with the options of each group
listed cheaply (config/groups.py) and without the `base_*` schemas."""

import string
from typing import Callable

from omegaconf import DictConfig, OmegaConf

from hydralearn.config.groups import group_options


def render(cfg: DictConfig, *, resolve: bool = False) -> str | None:
    """The help text for the composed `cfg` (its `hydra` node included); None where the template
    names a placeholder that only Hydra fills ($FLAGS_HELP, from its private parser)."""
    template = string.Template(cfg.hydra.help.template)
    fill: dict[str, Callable[[], str]] = {
        "APP_CONFIG_GROUPS": lambda: _groups(cfg, hydra=False),
        "HYDRA_CONFIG_GROUPS": lambda: _groups(cfg, hydra=True),
        "CONFIG": lambda: OmegaConf.to_yaml(
            OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"]), resolve=resolve),
    }
    names = set(template.get_identifiers())
    if not names <= fill.keys():
        return None
    return template.substitute({name: fill[name]() for name in names})


def _groups(cfg: DictConfig, *, hydra: bool) -> str:
    """One line per group, `group: option, option`, as Hydra writes them."""
    options = group_options(cfg.hydra.runtime.config_sources)
    return "".join(f"{group}: {', '.join(names)}\n" for group, names in sorted(options.items())
                   if (group == "hydra" or group.startswith("hydra/")) == hydra)
