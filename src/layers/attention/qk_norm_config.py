"""Schema of the `model/attention=qk_norm` option (layers/attention/qk_norm.py)."""

import dataclasses

from hydralearn.layers.attention.gqa_config import AttentionConfig
from hydralearn.layers.registry import register


@register(group="model/attention", name="qk_norm")
@dataclasses.dataclass(kw_only=True)
class QKNormConfig(AttentionConfig):
    _target_: str = "hydralearn.layers.attention.qk_norm.QKNormAttention"
