"""`model/adapter=none`: the model as built, every parameter trained."""

from flax import nnx

from hydralearn.layers.adapter.none_config import NoAdapterConfig


class NoAdapter:
    trainable = nnx.Param

    def __init__(self, config: NoAdapterConfig):
        del config

    def __call__(self, model: nnx.Module, rngs: nnx.Rngs) -> None:
        del model, rngs

    @staticmethod
    def merged(model: nnx.Module) -> nnx.Module:
        return model
