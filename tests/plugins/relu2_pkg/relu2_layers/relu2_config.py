"""Schema of the `model/ffn=relu2` option. Imports no jax: composing and checking configs
stays fast, and the layer module is imported only when a model is built."""

import dataclasses

from hydralearn.layers.registry import register


@register(group="model/ffn", name="relu2")
@dataclasses.dataclass(kw_only=True)
class Relu2MLPConfig:
    _target_: str = "relu2_layers.relu2.Relu2MLP"
    scale: float = 1.0  # multiplies the squared activations
