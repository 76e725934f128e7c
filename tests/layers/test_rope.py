"""RoPE against the complex-number formulation of Su et al., and its relative-position property."""

import jax
import jax.numpy as jnp
import numpy as np

from hydralearn.layers.position.rope import RoPE
from hydralearn.layers.position.rope_config import RoPEConfig


def complex_rope(x, positions, theta):
    """Pairs (x_i, x_{i+D/2}) as complex numbers multiplied by exp(i * pos * theta^(-2i/D))."""
    x = np.asarray(x, np.float64)
    half = x.shape[-1] // 2
    z = x[..., :half] + 1j * x[..., half:]
    freqs = theta ** (-np.arange(half) * 2.0 / x.shape[-1])
    z = z * np.exp(1j * np.asarray(positions)[..., None, None] * freqs)
    return np.concatenate([z.real, z.imag], axis=-1)


def make_rope(head_dim=16, theta=10000.0):
    return RoPE(RoPEConfig(), head_dim=head_dim, rope_theta=theta)


def test_matches_complex_rotation():
    x = jax.random.normal(jax.random.key(0), (2, 9, 3, 16))
    positions = jnp.broadcast_to(jnp.arange(9) * 7, (2, 9))
    np.testing.assert_allclose(make_rope(theta=500.0)(x, positions), complex_rope(x, positions, 500.0),
                               atol=2e-5)


def test_scores_depend_only_on_relative_position():
    rope = make_rope()
    q = jax.random.normal(jax.random.key(1), (1, 1, 1, 16))
    k = jax.random.normal(jax.random.key(2), (1, 1, 1, 16))

    def score(m, n):
        return float(jnp.sum(rope(q, jnp.full((1, 1), m)) * rope(k, jnp.full((1, 1), n))))

    assert abs(score(5, 2) - score(105, 102)) < 1e-4
    assert abs(score(5, 2) - score(3, 0)) < 1e-4
    assert abs(score(5, 2) - score(2, 5)) > 1e-3  # not symmetric: direction matters


def test_position_zero_is_identity():
    x = jax.random.normal(jax.random.key(3), (1, 4, 2, 8))
    np.testing.assert_allclose(make_rope(head_dim=8)(x, jnp.zeros((1, 4), jnp.int32)), x, atol=1e-6)
