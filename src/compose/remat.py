"""Remat policies (conf/remat): which activations of a block are kept for the backward pass.

Layers tag activations with checkpoint names (attention: q_proj, k_proj, v_proj,
attn_context, o_proj; feed-forward: ffn_in, ffn_out). A policy says which to save on the
device, which to offload to host memory, and recomputes the rest. The wrapper is
`jax.checkpoint` around one scanned block (flax's nnx.remat kept an extra copy of the
stacked weights in a measurement here, so plain jax.checkpoint is used).
"""

import dataclasses
import enum
import functools
from typing import Callable

import jax

CHECKPOINT_NAMES = ("q_proj", "k_proj", "v_proj", "attn_context", "o_proj", "ffn_in", "ffn_out")
HOST_MEMORY = "pinned_host"


class RematPolicy(enum.Enum):
    AUTO = "auto"  # the hardware profile's preferred_remat
    NONE = "none"  # save everything: fastest, most memory
    FULL = "full"  # save only block inputs: recompute the whole block
    SAVE_DOTS = "save_dots"  # save matmul outputs without batch dims (projections), recompute the rest
    SAVE_QKV_PROJ = "save_qkv_proj"  # save q/k/v projections
    SAVE_ATTN_CONTEXT = "save_attn_context"  # save the attention output: attention never recomputed
    OFFLOAD_DOTS = "offload_dots"  # like save_dots, but kept in host memory
    OFFLOAD_QKV_PROJ = "offload_qkv_proj"  # like save_qkv_proj, but kept in host memory
    CUSTOM = "custom"  # `names` says what to save or offload


class NameAction(enum.Enum):
    SAVE = "save"  # keep on the device
    OFFLOAD = "offload"  # move to host memory, bring back for the backward pass
    RECOMPUTE = "recompute"


NAMED_POLICIES = {
    RematPolicy.SAVE_QKV_PROJ: {n: NameAction.SAVE for n in ("q_proj", "k_proj", "v_proj")},
    RematPolicy.SAVE_ATTN_CONTEXT: {"attn_context": NameAction.SAVE},
    RematPolicy.OFFLOAD_QKV_PROJ: {n: NameAction.OFFLOAD for n in ("q_proj", "k_proj", "v_proj")},
}


@dataclasses.dataclass(kw_only=True, frozen=True)
class RematConfig:
    policy: RematPolicy = RematPolicy.NONE
    # For policy=custom: checkpoint name -> save | offload | recompute (a dict, so
    # `remat.names.ffn_in=offload` changes one entry).
    names: dict[str, NameAction] = dataclasses.field(default_factory=dict)

    def errors(self) -> list[str]:
        out = [f"remat.names.{n}: unknown checkpoint name; valid names: {', '.join(CHECKPOINT_NAMES)}"
               for n in self.names if n not in CHECKPOINT_NAMES]
        if self.names and self.policy is not RematPolicy.CUSTOM:
            out.append(f"remat.names is set but remat.policy={self.policy.value}; use remat=custom "
                       "(or remat.policy=custom) for names to take effect")
        return out

    @property
    def offloads(self) -> bool:
        return self.policy in (RematPolicy.OFFLOAD_DOTS, RematPolicy.OFFLOAD_QKV_PROJ) or (
            self.policy is RematPolicy.CUSTOM and NameAction.OFFLOAD in self.names.values())


def resolve_remat(config: RematConfig, *, preferred: str) -> RematConfig:
    """`auto` becomes the hardware's preferred policy, recorded in the saved config."""
    if config.policy is not RematPolicy.AUTO:
        return config
    return dataclasses.replace(config, policy=RematPolicy(preferred))


def remat_errors(config: RematConfig, *, memory_kinds: tuple[str, ...], host: str) -> list[str]:
    """Host offload needs a backend with a pinned host memory space."""
    if config.offloads and HOST_MEMORY not in memory_kinds:
        return [f"remat.policy={config.policy.value} offloads activations to host memory, which "
                f"needs a backend with memory kind '{HOST_MEMORY}'; this host has {host} with "
                f"memory kinds {list(memory_kinds)}; choose a save_* policy instead"]
    return []


def checkpoint_policy(config: RematConfig) -> Callable:
    policies = jax.checkpoint_policies
    if config.policy is RematPolicy.FULL:
        return policies.nothing_saveable
    if config.policy is RematPolicy.SAVE_DOTS:
        return policies.dots_with_no_batch_dims_saveable
    if config.policy is RematPolicy.OFFLOAD_DOTS:
        return policies.offload_dot_with_no_batch_dims(offload_src="device", offload_dst=HOST_MEMORY)
    names = config.names if config.policy is RematPolicy.CUSTOM else NAMED_POLICIES[config.policy]
    return policies.save_and_offload_only_these_names(
        names_which_can_be_saved=[n for n, a in names.items() if a is NameAction.SAVE],
        names_which_can_be_offloaded=[n for n, a in names.items() if a is NameAction.OFFLOAD],
        offload_src="device", offload_dst=HOST_MEMORY)


def block_transform(config: RematConfig) -> Callable:
    """A wrapper for the scanned block function implementing the policy."""
    if config.policy is RematPolicy.AUTO:
        raise ValueError("remat.policy=auto must be resolved before building")
    if config.policy is RematPolicy.NONE:
        return _identity
    # prevent_cse=False: inside scan, CSE cannot merge the recomputation away.
    return functools.partial(jax.checkpoint, policy=checkpoint_policy(config), prevent_cse=False)


def _identity(fn):
    return fn
