"""Position encodings, one `model/position` option per module.

Every option is built as `cls(config, head_dim=..., rope_theta=...)` and called as
`encode(x, positions)` on queries and keys of shape (B, T, H, D).
"""
