"""Feed-forward blocks, one `model/ffn` option per module.

Every option is built as `cls(config, d_model=..., ffn_dim=..., numerics=..., rngs=...)` and
called on (B, T, d_model); it returns (y, aux), aux a dict of scalars. Entries named
`*_loss` are added to the training objective (summed over layers); all entries are reported
as metrics (other entries averaged over the layers that produce them).

Optional hooks on an option's Config, read by the model and the composer, never by name:
- `layer_pattern() -> tuple[Config, ...]`: the ffn configs of one repeating group of layers
  (MoE with `every: n` gives n-1 dense configs then itself); default `(config,)`.
- `active_expert_share: float`: share of the weights on the `experts` logical axis that one
  token uses (top_k / num_experts), for active-parameter FLOPs.
- `experts_per_token: int`: how many experts' hidden activations one token makes (top_k), for
  the memory estimate; default 1.
- `errors() -> list[str]`: the option's own value rules, reported with every other error.
- `for_generation() -> Config`: the config generation runs with, where a token's output must
  not depend on the tokens after it (a KV cache computes each token once); default the config.
"""
