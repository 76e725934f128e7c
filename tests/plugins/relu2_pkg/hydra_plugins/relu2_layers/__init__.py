"""Hydra's own mechanism for a package's config files: every SearchPathPlugin under the
`hydra_plugins` namespace package is discovered, and adds its directory to the search path."""

from hydra.core.config_search_path import ConfigSearchPath
from hydra.plugins.search_path_plugin import SearchPathPlugin


class Relu2SearchPath(SearchPathPlugin):
    def manipulate_search_path(self, search_path: ConfigSearchPath) -> None:
        search_path.append(provider="relu2-layers", path="pkg://relu2_layers.conf")
