"""RoPE with Llama 3.1's frequency scaling (Meta 2024, `rope_type: llama3`).

Wavelengths shorter than original_max_position / high_freq_factor keep their frequency;
those longer than original_max_position / low_freq_factor are divided by `factor`; the band
in between is interpolated smoothly.
"""

import math

import jax
import jax.numpy as jnp

from hydralearn.layers.position.rope import RoPE


class Llama3RoPE(RoPE):
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
