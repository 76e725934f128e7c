"""Optimizer (conf/optim): AdamW, linear warmup then cosine decay, global-norm clipping."""

import dataclasses

import jax
import optax

from hydralearn.compose.schema import OptimConfig


@dataclasses.dataclass(frozen=True)
class Optimizer:
    transform: optax.GradientTransformation
    schedule: optax.Schedule


def build_optimizer(config: OptimConfig, *, total_steps: int) -> Optimizer:
    warmup = min(config.warmup_steps, max(total_steps - 1, 0))
    schedule = optax.warmup_cosine_decay_schedule(
        init_value=0.0, peak_value=config.lr, warmup_steps=warmup,
        decay_steps=max(total_steps, warmup + 1), end_value=config.lr * config.min_lr_ratio)
    transform = optax.chain(
        optax.clip_by_global_norm(config.clip_norm),
        optax.adamw(schedule, b1=config.b1, b2=config.b2, eps=config.eps,
                    weight_decay=config.weight_decay, mask=_decay_mask))
    return Optimizer(transform=transform, schedule=schedule)


def _decay_mask(params):
    """Weight decay on matrices only: not on norm scales or biases."""
    def decays(path, _):
        names = {getattr(k, "key", None) for k in path}  # nnx Params add a trailing `.value` key
        return not names & {"scale", "bias"}
    return jax.tree_util.tree_map_with_path(decays, params)
