"""Remat policies (conf/remat): which activations of a block are saved for the backward pass."""

import dataclasses
import enum
import functools
from typing import Callable

import jax


class RematPolicy(enum.Enum):
    NONE = "none"  # save everything: fastest, most memory
    FULL = "full"  # save only block inputs: recompute the whole block


@dataclasses.dataclass(kw_only=True, frozen=True)
class RematConfig:
    policy: RematPolicy = RematPolicy.NONE


def block_transform(config: RematConfig) -> Callable:
    """A wrapper for the scanned block function implementing the policy."""
    if config.policy is RematPolicy.NONE:
        return _identity
    return functools.partial(jax.checkpoint, policy=jax.checkpoint_policies.nothing_saveable,
                             prevent_cse=False)


def _identity(fn):
    return fn
