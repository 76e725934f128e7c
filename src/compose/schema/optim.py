"""Schema of conf/optim: AdamW, linear warmup then cosine decay, global-norm clipping."""

import dataclasses


@dataclasses.dataclass(kw_only=True)
class OptimConfig:
    lr: float = 3e-3
    warmup_steps: int = 20
    min_lr_ratio: float = 0.1  # final lr = lr * min_lr_ratio, reached at trainer.steps
    b1: float = 0.9
    b2: float = 0.95
    eps: float = 1e-8
    weight_decay: float = 0.1  # on matrices only, not on norm scales or biases
    clip_norm: float = 1.0

    def errors(self) -> list[str]:
        out = []
        if self.lr <= 0:
            out.append(f"optim.lr={self.lr} must be positive")
        if self.warmup_steps < 0:
            out.append(f"optim.warmup_steps={self.warmup_steps} must be >= 0")
        if not 0 <= self.min_lr_ratio <= 1:
            out.append(f"optim.min_lr_ratio={self.min_lr_ratio} must be in [0, 1]")
        return out
