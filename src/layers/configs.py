"""hydralearn's own layer options, registered as any plugin's are: the `hydralearn.plugins`
entry point of this package (pyproject.toml) names this module, and importing it imports every
`*_config` module here, whose `@register` puts each layer's schema in the registry. Adding a
layer is adding its two files; nothing lists it."""

import importlib
import pkgutil

import hydralearn.layers as _layers

for _module in pkgutil.walk_packages(_layers.__path__, prefix=f"{_layers.__name__}."):
    if _module.name.endswith("_config"):
        importlib.import_module(_module.name)
