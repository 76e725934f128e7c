"""Schema of the `model/position=none` option (layers/position/none.py)."""

import dataclasses

from hydralearn.layers.registry import register


@register(group="model/position", name="none")
@dataclasses.dataclass(kw_only=True)
class NoPositionConfig:
    _target_: str = "hydralearn.layers.position.none.NoPosition"
