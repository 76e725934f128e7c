"""Adapters, one `model/adapter` option per module: applied to any model once it is built.

Every option is built as `cls(config)`; `adapter(model, rngs)` changes the model in place
(e.g. wraps some of its weights), `adapter.trainable` is the nnx filter of the parameters
the optimizer updates (the rest are frozen: no gradient, no optimizer state), and
`adapter.merged(model)` gives back the model in its plain layout (adapters folded into the
weights they wrap; for export). A wrapped weight keeps the original under `base`.
"""
