"""Schema of the `model/attention=gqa` option (layers/attention/gqa.py): grouped-query
attention with bias-free projections, as in Llama; the other options' schemas extend it."""

import dataclasses

from hydralearn.layers.registry import register


@register(group="model/attention", name="gqa")
@dataclasses.dataclass(kw_only=True)
class AttentionConfig:
    _target_: str = "hydralearn.layers.attention.gqa.Attention"
