"""Autoregressive sampling from a trained model: greedy (temperature 0) or with temperature.

The whole loop runs inside one jit over a fixed-length token buffer, recomputing the causal
forward pass at each position (no KV cache: fine for the short end-of-run samples).
"""

import functools

import jax
import jax.numpy as jnp


def generate(apply, params, prompt: jax.Array, *, num_tokens: int, buffer_len: int,
             temperature: float, seed: int) -> jax.Array:
    """prompt: (P,) int32 -> (P + num_tokens,) int32, with P + num_tokens <= buffer_len."""
    if len(prompt) + num_tokens > buffer_len:
        raise ValueError(f"prompt ({len(prompt)}) + {num_tokens} tokens exceeds the model's "
                         f"sequence length {buffer_len}")
    buffer = jnp.zeros((buffer_len,), jnp.int32).at[: len(prompt)].set(prompt)
    out = _generate(apply, params, buffer, jax.random.key(seed), start=len(prompt),
                    num_tokens=num_tokens, temperature=temperature)
    return out[: len(prompt) + num_tokens]


@functools.partial(jax.jit, static_argnames=("apply", "start", "num_tokens", "temperature"))
def _generate(apply, params, buffer, key, *, start, num_tokens, temperature):
    def step(i, carry):
        buffer, key = carry
        position = start + i
        logits = apply(params, buffer[None]).logits[0, position - 1]  # (V,)
        key, sub = jax.random.split(key)
        if temperature > 0:
            token = jax.random.categorical(sub, logits / temperature)
        else:
            token = jnp.argmax(logits)
        return buffer.at[position].set(token.astype(jnp.int32)), key

    buffer, _ = jax.lax.fori_loop(0, num_tokens, step, (buffer, key))
    return buffer
