"""The optimizer of a config: conf/optim's optimizer, conf/schedule's learning rate, global-norm
clipping, and weight decay by parameter role.

Roles with the same decay rate share one optimizer instance; `optax.partition` gives each
instance its parameters. Every optimizer here updates each parameter on its own (after the
global clipping), so the split changes nothing but which rate a parameter gets.
"""

import dataclasses

import jax
import optax

from hydralearn.compose.param_roles import roles
from hydralearn.config.schema import ROLES
from hydralearn.layers.registry import instantiate


@dataclasses.dataclass(frozen=True)
class Optimizer:
    transform: optax.GradientTransformation
    schedule: optax.Schedule  # the learning rate at each update, from 0


def build_optimizer(optim, *, schedule, total_steps: int) -> Optimizer:
    """`optim`, `schedule`: the configs of conf/optim and conf/schedule."""
    lr = instantiate(schedule, peak=optim.lr, total_steps=total_steps)
    groups = decay_groups(optim.weight_decay_by_role)
    label_of = {role: label for label, (members, _) in groups.items() for role in members}
    decayed = optax.partition(
        {label: instantiate(optim, learning_rate=lr, weight_decay=rate)
         for label, (_, rate) in groups.items()},
        lambda params: jax.tree.map(label_of.get, roles(params)))
    clip = [optax.clip_by_global_norm(optim.clip_norm)] if optim.clip_norm else []
    return Optimizer(transform=optax.chain(*clip, decayed), schedule=lr)


def decay_groups(rates: dict[str, float]) -> dict[str, tuple[tuple[str, ...], float]]:
    """Label -> (roles, rate) for each distinct rate; a role without an entry is not decayed."""
    by_rate: dict[float, list[str]] = {}
    for role in ROLES:
        by_rate.setdefault(float(rates.get(role, 0.0)), []).append(role)
    return {"_".join(members): (tuple(members), rate) for rate, members in sorted(by_rate.items())}
