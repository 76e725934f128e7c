"""Attention kernels (conf/kernel): a name in config -> the function every Attention calls."""

import dataclasses
import enum
import functools

import jax

from hydralearn.compose.hardware import Platform
from hydralearn.layers.attention import AttentionFn


class Kernel(enum.Enum):
    AUTO = "auto"
    XLA = "xla"


@dataclasses.dataclass(kw_only=True, frozen=True)
class KernelConfig:
    name: Kernel = Kernel.AUTO


def resolve_kernel(config: KernelConfig, *, platform: Platform) -> KernelConfig:
    """`auto` becomes a concrete kernel for the platform, recorded in the saved config."""
    if config.name is not Kernel.AUTO:
        return config
    return dataclasses.replace(config, name=Kernel.XLA)


def attention_function(config: KernelConfig) -> AttentionFn:
    if config.name is Kernel.XLA:
        return functools.partial(jax.nn.dot_product_attention, is_causal=True, implementation="xla")
    raise ValueError(f"kernel.name={config.name.value} must be resolved before building")
