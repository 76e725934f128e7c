"""Schema of the `model/attention=qkv_bias` option (layers/attention/qkv_bias.py)."""

import dataclasses

from hydralearn.layers.attention.gqa_config import AttentionConfig
from hydralearn.layers.registry import register


@register(group="model/attention", name="qkv_bias")
@dataclasses.dataclass(kw_only=True)
class QKVBiasConfig(AttentionConfig):
    _target_: str = "hydralearn.layers.attention.qkv_bias.QKVBiasAttention"
