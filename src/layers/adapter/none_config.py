"""Schema of the `model/adapter=none` option (the default): every parameter trains."""

import dataclasses

from hydralearn.layers.registry import register


@register(group="model/adapter", name="none")
@dataclasses.dataclass(kw_only=True)
class NoAdapterConfig:
    _target_: str = "hydralearn.layers.adapter.none.NoAdapter"
