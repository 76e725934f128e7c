"""Schemas of conf/optim: one per optimizer, each built from optax (compose/optimizers.py).

Every optimizer shares the fields of OptimizerConfig: its peak learning rate (conf/schedule
shapes it over the run), global-norm clipping, and decoupled weight decay by parameter role.
A role is read from a parameter's name and logical axes (compose/param_roles.py):

    matrix   every other weight: attention and feed-forward projections, experts, router
    head     the output projection (logical axes end in `vocab`; absent with tied embeddings)
    embed    the token embedding table (logical axes start with `vocab`)
    norm     norm scales
    bias     biases

`optim.weight_decay_by_role` is a dict so that one entry can change:
`optim.weight_decay_by_role.embed=0.1`. A rate r shrinks a weight by lr(t) * r each step
(AdamW's convention, used by every optimizer here).
"""

import dataclasses
from typing import Optional

from hydralearn.errors import closest
from hydralearn.layers.registry import register

ROLES = ("matrix", "head", "embed", "norm", "bias")


def _decay_by_role() -> dict[str, float]:
    # Decay on the matmul weights only: not on norms, biases or the embedding table.
    return {"matrix": 0.1, "head": 0.1, "embed": 0.0, "norm": 0.0, "bias": 0.0}


@dataclasses.dataclass(kw_only=True)
class OptimizerConfig:
    _target_: str  # the builder in compose/optimizers.py, set by each option's schema
    lr: float  # peak learning rate; each optimizer's schema has its own default
    clip_norm: float = 1.0  # clip the gradient's global norm to this; 0: no clipping
    weight_decay_by_role: dict[str, float] = dataclasses.field(default_factory=_decay_by_role)

    def errors(self) -> list[str]:
        out = []
        if self.lr <= 0:
            out.append(f"optim.lr={self.lr} must be positive")
        if self.clip_norm < 0:
            out.append(f"optim.clip_norm={self.clip_norm} must be >= 0 (0: no clipping)")
        for role, rate in self.weight_decay_by_role.items():
            key = f"optim.weight_decay_by_role.{role}"
            if role not in ROLES:
                out.append(f"{key}: no such parameter role{closest(key, [f'optim.weight_decay_by_role.{r}' for r in ROLES])} "
                           f"(roles: {', '.join(ROLES)})")
            elif rate < 0:
                out.append(f"{key}={rate} must be >= 0")
        return out


def _in_unit_interval(**values: float) -> list[str]:
    return [f"optim.{k}={v} must be in [0, 1)" for k, v in values.items() if not 0 <= v < 1]


@register(group="optim", name="adamw")
@dataclasses.dataclass(kw_only=True)
class AdamWConfig(OptimizerConfig):
    """AdamW (Loshchilov & Hutter): optax.adamw."""
    _target_: str = "hydralearn.compose.optimizers.adamw"
    lr: float = 3e-3
    b1: float = 0.9
    b2: float = 0.95
    eps: float = 1e-8

    def errors(self) -> list[str]:
        return super().errors() + _in_unit_interval(b1=self.b1, b2=self.b2)


@register(group="optim", name="lion")
@dataclasses.dataclass(kw_only=True)
class LionConfig(OptimizerConfig):
    """Lion (Chen et al. 2023): optax.lion. Its sign updates are larger than Adam's: use a
    learning rate 3-10x smaller than AdamW's and a weight decay 3-10x larger."""
    _target_: str = "hydralearn.compose.optimizers.lion"
    lr: float = 3e-4
    b1: float = 0.9
    b2: float = 0.99

    def errors(self) -> list[str]:
        return super().errors() + _in_unit_interval(b1=self.b1, b2=self.b2)


@register(group="optim", name="sgd")
@dataclasses.dataclass(kw_only=True)
class SgdConfig(OptimizerConfig):
    """SGD with momentum: optax.sgd. Weight decay is added to the gradient before the
    momentum (L2, as torch.optim.SGD does)."""
    _target_: str = "hydralearn.compose.optimizers.sgd"
    lr: float = 0.1
    momentum: float = 0.9  # 0: plain SGD
    nesterov: bool = False

    def errors(self) -> list[str]:
        return super().errors() + _in_unit_interval(momentum=self.momentum)


@register(group="optim", name="adafactor")
@dataclasses.dataclass(kw_only=True)
class AdafactorConfig(OptimizerConfig):
    """Adafactor (Shazeer & Stern 2018): optax.adafactor; factored second moments for every
    weight with two dimensions of at least `min_dim_size_to_factor`."""
    _target_: str = "hydralearn.compose.optimizers.adafactor"
    lr: float = 1e-2
    decay_rate: float = 0.8  # second-moment decay: 1 - t^-decay_rate
    min_dim_size_to_factor: int = 128
    clipping_threshold: float = 1.0  # clip each update's RMS to this; 0: off
    multiply_by_parameter_scale: bool = True  # step sizes relative to each weight's RMS
    momentum: Optional[float] = None  # first-moment decay; None: no first moment (the memory-light default)
    eps: float = 1e-30

    def errors(self) -> list[str]:
        out = super().errors()
        if self.decay_rate <= 0:
            out.append(f"optim.decay_rate={self.decay_rate} must be positive")
        if self.clipping_threshold < 0:
            out.append(f"optim.clipping_threshold={self.clipping_threshold} must be >= 0 (0: off)")
        return out + (_in_unit_interval(momentum=self.momentum) if self.momentum is not None else [])


@register(group="optim", name="muon")
@dataclasses.dataclass(kw_only=True)
class MuonConfig(OptimizerConfig):
    """Muon (Jordan et al. 2024): optax.contrib.muon. Matrix-role weights get orthogonalized
    momentum updates (layer and expert axes batched, the input and output axes read from the
    logical axes); embeddings, head, norms and biases get AdamW at `adam_lr`."""
    _target_: str = "hydralearn.compose.optimizers.muon"
    lr: float = 0.02
    beta: float = 0.95  # momentum
    nesterov: bool = True
    ns_steps: int = 5  # Newton-Schulz iterations
    adam_lr: float = 3e-3  # peak lr of the AdamW part, shaped by the same schedule
    adam_b1: float = 0.9
    adam_b2: float = 0.95

    def errors(self) -> list[str]:
        out = super().errors()
        if self.ns_steps < 1:
            out.append(f"optim.ns_steps={self.ns_steps} must be at least 1")
        if self.adam_lr <= 0:
            out.append(f"optim.adam_lr={self.adam_lr} must be positive")
        return out + _in_unit_interval(beta=self.beta, adam_b1=self.adam_b1, adam_b2=self.adam_b2)
