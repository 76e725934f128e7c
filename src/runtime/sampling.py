"""How the next token is chosen; jax-free, so hydralearn-generate checks its flags without
loading jax (the sampling itself: runtime/generate.py `choose`)."""

import dataclasses


@dataclasses.dataclass(frozen=True, kw_only=True)
class Sampling:
    temperature: float = 0.0  # 0: greedy (argmax)
    top_k: int = 0  # > 0: only the k most likely tokens
    top_p: float = 1.0  # < 1: only the fewest most likely tokens whose probabilities reach top_p
    seed: int = 0

    def errors(self) -> list[str]:
        out = [] if self.temperature >= 0 else [f"--temperature={self.temperature} must be >= 0"]
        if self.top_k < 0:
            out.append(f"--top-k={self.top_k} must be >= 0 (0: off)")
        if not 0 < self.top_p <= 1:
            out.append(f"--top-p={self.top_p} must be in (0, 1]")
        return out
