"""Schemas of conf/schedule: the learning rate over the run, as a multiple of `optim.lr`.

A top-level group rather than a part of `optim`: every optimizer takes any schedule, so
`optim=lion` keeps the schedule chosen and `schedule=wsd` keeps the optimizer (torchtitan
keeps `lr_scheduler` beside `optimizer` for the same reason). Steps are optimizer updates,
laid out over `trainer.steps`; each option is a few lines of optax (compose/schedules.py):

    cosine     linear warmup to optim.lr, cosine decay to optim.lr * min_lr_ratio at the end
    linear     linear warmup, linear decay to optim.lr * min_lr_ratio at the end
    constant   linear warmup, then optim.lr
    wsd        warmup-stable-decay: warmup, optim.lr until the last decay_fraction of the
               steps, then linear decay to optim.lr * min_lr_ratio (Hägele et al. 2024)

A warmup longer than the run is cut to end one step before it.
"""

import dataclasses

from hydralearn.layers.registry import register


@dataclasses.dataclass(kw_only=True)
class ScheduleConfig:
    _target_: str  # the builder in compose/schedules.py, set by each option's schema
    warmup_steps: int = 20  # linear warmup from 0 to optim.lr over this many steps

    def errors(self) -> list[str]:
        return [f"schedule.warmup_steps={self.warmup_steps} must be >= 0"] if self.warmup_steps < 0 else []


@dataclasses.dataclass(kw_only=True)
class DecayScheduleConfig(ScheduleConfig):
    _target_: str
    min_lr_ratio: float = 0.1  # the final lr is optim.lr * min_lr_ratio, reached at trainer.steps

    def errors(self) -> list[str]:
        out = super().errors()
        if not 0 <= self.min_lr_ratio <= 1:
            out.append(f"schedule.min_lr_ratio={self.min_lr_ratio} must be in [0, 1]")
        return out


@register(group="schedule", name="cosine")
@dataclasses.dataclass(kw_only=True)
class CosineConfig(DecayScheduleConfig):
    _target_: str = "hydralearn.compose.schedules.cosine"


@register(group="schedule", name="linear")
@dataclasses.dataclass(kw_only=True)
class LinearConfig(DecayScheduleConfig):
    _target_: str = "hydralearn.compose.schedules.linear"


@register(group="schedule", name="constant")
@dataclasses.dataclass(kw_only=True)
class ConstantConfig(ScheduleConfig):
    _target_: str = "hydralearn.compose.schedules.constant"


@register(group="schedule", name="wsd")
@dataclasses.dataclass(kw_only=True)
class WsdConfig(DecayScheduleConfig):
    _target_: str = "hydralearn.compose.schedules.wsd"
    decay_fraction: float = 0.2  # the share of trainer.steps, at the end, that decays

    def errors(self) -> list[str]:
        out = super().errors()
        if not 0 < self.decay_fraction <= 1:
            out.append(f"schedule.decay_fraction={self.decay_fraction} must be in (0, 1]")
        return out
