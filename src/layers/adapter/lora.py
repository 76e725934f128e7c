"""LoRA (Hu et al. 2021): W + (alpha / rank) * A @ B on chosen weights, W frozen.

Generic over the model: a weight is chosen by its attribute name (`targets`) and split into
input and output axes by its logical axis names: leading `layers`/`experts` axes are batch
(one adapter per layer and per expert), then `embed` first means (embed | rest), `embed`
last means (rest | embed) (e.g. attention o: (heads, head_dim | embed)). The layers read
every weight with `w[...]` (params.use), so a wrapped weight is used unchanged; the update
is added in weight space, A random (PEFT's kaiming-uniform bound 1/sqrt(fan_in)), B zero, so
the adapted model starts equal to the base model.
"""

import math

import jax
import jax.numpy as jnp
from flax import nnx

from hydralearn.errors import ConfigError
from hydralearn.layers.adapter.lora_config import LoRAConfig

BATCH_AXES = ("layers", "experts")


class LoRAParam(nnx.Param):
    """An adapter weight: with model/adapter=lora, the only parameters that train."""


class LoRAWeight(nnx.Module):
    """A frozen weight `base` plus its low-rank update; `w[...]` is the adapted weight."""

    def __init__(self, base: nnx.Param, *, num_in: int, rank: int, scale: float, rngs: nnx.Rngs):
        axes = tuple(base.out_sharding)
        batch = next((i for i, a in enumerate(axes) if a not in BATCH_AXES), len(axes))
        shape = base.shape
        in_shape, out_shape = shape[batch:batch + num_in], shape[batch + num_in:]
        bound = 1.0 / math.sqrt(math.prod(in_shape))
        init_a = nnx.with_partitioning(lambda key, shape, dtype: jax.random.uniform(
            key, shape, dtype, -bound, bound), (*axes[:batch + num_in], None), eager_sharding=False)
        init_b = nnx.with_partitioning(nnx.initializers.zeros, (*axes[:batch], None, *axes[batch + num_in:]),
                                       eager_sharding=False)
        self.base = base
        self.num_in, self.scale = num_in, scale
        self.a = LoRAParam(init_a(rngs.params(), (*shape[:batch], *in_shape, rank), jnp.float32))
        self.b = LoRAParam(init_b(rngs.params(), (*shape[:batch], rank, *out_shape), jnp.float32))

    def delta(self) -> jax.Array:
        """scale * A @ B in the base weight's shape (float32)."""
        a, b = self.a[...], self.b[...]
        nb = a.ndim - self.num_in - 1  # batch axes left (none once the layer scan sliced them)
        batch = a.shape[:nb]
        product = a.reshape(*batch, -1, a.shape[-1]) @ b.reshape(*batch, b.shape[nb], -1)
        return self.scale * product.reshape(*batch, *a.shape[nb:-1], *b.shape[nb + 1:])

    def __getitem__(self, index):
        return (self.base[...].astype(jnp.float32) + self.delta())[index]


class LoRA:
    trainable = LoRAParam

    def __init__(self, config: LoRAConfig):
        self.config = config

    def __call__(self, model: nnx.Module, rngs: nnx.Rngs) -> None:
        c = self.config
        found = {}
        for _, module in list(nnx.iter_modules(model)):
            for name in c.targets:
                weight = getattr(module, name, None)
                if isinstance(weight, nnx.Param) and len(weight.shape) >= 2:
                    found[name] = True
                    setattr(module, name, LoRAWeight(weight, num_in=_num_in(name, weight), rank=c.rank,
                                                     scale=c.alpha / c.rank, rngs=rngs))
        missing = [t for t in c.targets if t not in found]
        if missing:
            raise ConfigError([f"model.adapter.targets: {', '.join(missing)} names no weight matrix "
                               f"of this model; weights: {', '.join(weight_names(model))}"])

    @staticmethod
    def merged(model: nnx.Module) -> nnx.Module:
        """The model with each adapted weight replaced by W + scale * A @ B (W's dtype)."""
        for _, module in list(nnx.iter_modules(model)):
            for name, value in list(vars(module).items()):
                if isinstance(value, LoRAWeight):
                    merged = (value.base[...].astype(jnp.float32) + value.delta()).astype(value.base.dtype)
                    setattr(module, name, nnx.Param(merged, **value.base.get_metadata()))
        return model


def _num_in(name: str, weight: nnx.Param) -> int:
    axes = [a for a in weight.out_sharding if a not in BATCH_AXES]
    if axes[0] == "embed":
        return 1
    if axes[-1] == "embed":
        return len(axes) - 1
    raise ConfigError([f"model.adapter.targets: {name} has axes {tuple(axes)}; LoRA needs `embed` "
                       "first or last to tell its input from its output"])


def weight_names(model: nnx.Module) -> list[str]:
    return sorted({name for _, m in nnx.iter_modules(model) for name, v in vars(m).items()
                   if isinstance(v, nnx.Param) and len(v.shape) >= 2})
