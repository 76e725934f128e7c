"""Run-loop settings (conf/trainer)."""

import dataclasses


@dataclasses.dataclass(kw_only=True, frozen=True)
class TrainerConfig:
    steps: int = 100
    log_every: int = 10
    eval_every: int = 50  # 0: only at the end
    eval_batches: int = 8
    sample_tokens: int = 200  # 0: no end-of-run sample
    sample_prompt: str = "def "
    sample_temperature: float = 0.8

    def errors(self) -> list[str]:
        out = [f"trainer.{n}={getattr(self, n)} must be positive"
               for n in ("steps", "log_every", "eval_batches") if getattr(self, n) <= 0]
        out += [f"trainer.{n}={getattr(self, n)} must be >= 0"
                for n in ("eval_every", "sample_tokens", "sample_temperature") if getattr(self, n) < 0]
        return out
