"""Remat policies (conf/remat): which activations of a block are kept for the backward pass.

Layers tag activations with checkpoint names (layers/checkpoint_names.py). A policy says
which to save on the device, which to offload to host memory, and recomputes the rest. The
wrapper is `jax.checkpoint` around one scanned block (flax's nnx.remat kept an extra copy of
the stacked weights in a measurement here, so plain jax.checkpoint is used).
"""

import dataclasses
import functools
from typing import Callable

import jax

from hydralearn.config.schema import NameAction, RematConfig, RematPolicy
from hydralearn.layers.checkpoint_names import ATTN_CONTEXT, QKV_PROJ

HOST_MEMORY = "pinned_host"

NAMED_POLICIES = {
    RematPolicy.save_qkv_proj: {n: NameAction.save for n in QKV_PROJ},
    RematPolicy.save_attn_context: {ATTN_CONTEXT: NameAction.save},
    RematPolicy.offload_qkv_proj: {n: NameAction.offload for n in QKV_PROJ},
}


def resolve_remat(config: RematConfig, *, preferred: RematPolicy) -> RematConfig:
    """`auto` becomes the hardware's preferred policy, recorded in the saved config."""
    if config.policy is not RematPolicy.auto:
        return config
    return dataclasses.replace(config, policy=preferred)


def remat_errors(config: RematConfig, *, memory_kinds: tuple[str, ...], host: str) -> list[str]:
    """Host offload needs a backend with a pinned host memory space."""
    if config.offloads and HOST_MEMORY not in memory_kinds:
        return [f"remat.policy={config.policy.value} offloads activations to host memory, which "
                f"needs a backend with memory kind '{HOST_MEMORY}'; this host has {host} with "
                f"memory kinds {list(memory_kinds)}; choose a save_* policy instead"]
    return []


def checkpoint_policy(config: RematConfig) -> Callable:
    policies = jax.checkpoint_policies
    if config.policy is RematPolicy.full:
        return policies.nothing_saveable
    if config.policy is RematPolicy.save_dots:
        return policies.dots_with_no_batch_dims_saveable
    if config.policy is RematPolicy.offload_dots:
        return policies.offload_dot_with_no_batch_dims(offload_src="device", offload_dst=HOST_MEMORY)
    names = config.names if config.policy is RematPolicy.custom else NAMED_POLICIES[config.policy]
    return policies.save_and_offload_only_these_names(
        names_which_can_be_saved=[n for n, a in names.items() if a is NameAction.save],
        names_which_can_be_offloaded=[n for n, a in names.items() if a is NameAction.offload],
        offload_src="device", offload_dst=HOST_MEMORY)


def block_transform(config: RematConfig) -> Callable:
    """A wrapper for the scanned block function implementing the policy."""
    if config.policy is RematPolicy.auto:
        raise ValueError("remat.policy=auto must be resolved before building")
    if config.policy is RematPolicy.none:
        return _identity
    # prevent_cse=False: inside scan, CSE cannot merge the recomputation away.
    return functools.partial(jax.checkpoint, policy=checkpoint_policy(config), prevent_cse=False)


def _identity(fn):
    return fn
