"""YaRN (Peng et al. 2023): NTK-by-parts frequency interpolation plus attention temperature.

Dimensions that rotate more than beta_fast times over the original context keep their
frequency, those rotating fewer than beta_slow times are interpolated by `factor`, with a
linear ramp between; cos and sin are scaled by 0.1 ln(factor) + 1.
"""

import math

import jax
import jax.numpy as jnp

from hydralearn.layers.position.rope import RoPE


class YaRN(RoPE):
    def _correction_dim(self, rotations: float) -> float:
        """The dimension index whose wavelength fits `rotations` times in the original context."""
        c = self.config
        return (self.head_dim * math.log(c.original_max_position / (rotations * 2 * math.pi))
                / (2 * math.log(self.rope_theta)))

    def inverse_frequencies(self) -> jax.Array:
        c = self.config
        inv_freq = super().inverse_frequencies()
        low = max(math.floor(self._correction_dim(c.beta_fast)), 0)
        high = min(math.ceil(self._correction_dim(c.beta_slow)), self.head_dim - 1)
        span = (high - low) or 0.001  # avoid 0/0 when the band is a single dimension
        ramp = jnp.clip((jnp.arange(self.head_dim // 2, dtype=jnp.float32) - low) / span, 0, 1)
        keep = 1 - ramp  # 1: extrapolate (keep frequency), 0: interpolate (divide by factor)
        return inv_freq / c.factor * (1 - keep) + inv_freq * keep

    def attention_scaling(self) -> float:
        return 0.1 * math.log(self.config.factor) + 1.0
