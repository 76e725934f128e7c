"""Feed-forward blocks, one `model/ffn` option per module.

Every option is built as `cls(config, d_model=..., ffn_dim=..., numerics=..., rngs=...)` and
called on (B, T, d_model); it returns (y, aux), aux a dict of scalars. Entries named
`*_loss` are added to the training objective; all entries are reported as metrics.
"""
