"""RoPE with Llama 3.1's frequency scaling (Meta 2024, `rope_type: llama3`).

Wavelengths shorter than original_max_position / high_freq_factor keep their frequency;
those longer than original_max_position / low_freq_factor are divided by `factor`; the band
in between is interpolated smoothly.
"""

import dataclasses
import math

import jax
import jax.numpy as jnp

from hydralearn.compose.registry import register
from hydralearn.layers.position.rope import RoPE


@register
class Llama3RoPE(RoPE):
    @dataclasses.dataclass(kw_only=True, frozen=True)
    class Config:
        factor: float = 8.0
        low_freq_factor: float = 1.0
        high_freq_factor: float = 4.0
        original_max_position: int = 8192  # context length the base model was trained with

        def errors(self) -> list[str]:
            out = [] if self.factor > 0 else [f"model.position.factor={self.factor} must be positive"]
            if self.high_freq_factor <= self.low_freq_factor:
                out.append(f"model.position.high_freq_factor={self.high_freq_factor} must exceed "
                           f"model.position.low_freq_factor={self.low_freq_factor}")
            return out

    def inverse_frequencies(self) -> jax.Array:
        c = self.config
        inv_freq = super().inverse_frequencies()
        wavelength = 2 * math.pi / inv_freq
        low_freq_wavelength = c.original_max_position / c.low_freq_factor
        high_freq_wavelength = c.original_max_position / c.high_freq_factor
        smooth = (c.original_max_position / wavelength - c.low_freq_factor) / (
            c.high_freq_factor - c.low_freq_factor)
        blended = (1 - smooth) * inv_freq / c.factor + smooth * inv_freq
        return jnp.where(wavelength > low_freq_wavelength, inv_freq / c.factor,
                         jnp.where(wavelength < high_freq_wavelength, inv_freq, blended))
