"""The role of each parameter (config/schema/optim.py: matrix, head, embed, norm, bias), read
from what every layer already states: the parameter's name and its logical axes.

Roles decide weight decay (`optim.weight_decay_by_role`) and, for Muon, which weights are
matrices and which of their axes are inputs and outputs. Stacked axes (`layers`, `experts`)
hold independent copies of a matrix, never its rows or columns.
"""

import jax
from flax import nnx
from optax.contrib import MuonDimensionNumbers

STACKED_AXES = ("layers", "experts")


def role(name: str, axes: tuple) -> str:
    """`name`: the parameter's own name (`scale`, `bias`, `q`, `table`); `axes`: its logical axes."""
    if name == "bias":
        return "bias"
    if name == "scale":
        return "norm"
    own = [a for a in axes if a not in STACKED_AXES]
    if own and own[0] == "vocab":
        return "embed"  # a lookup table (vocab, embed)
    if own and own[-1] == "vocab":
        return "head"  # a projection onto the vocabulary (embed, vocab)
    return "matrix"


def roles(params: nnx.State):
    """A tree of role names with one entry per parameter (a prefix of `params`)."""
    return jax.tree_util.tree_map_with_path(
        lambda path, var: role(_name(path), _axes(var)), params, is_leaf=_is_variable)


def muon_dimension_numbers(params: nnx.State):
    """Per parameter: MuonDimensionNumbers of a matrix-role weight, None for the others (AdamW).

    The inputs of a matmul weight come first: `embed` when it leads (q, k, v, up, gate,
    router: x @ W maps embed to the rest), otherwise every axis but the last (o: heads,
    head_dim -> embed; down: mlp -> embed)."""
    def numbers(path, var):
        value = var.get_value()
        if not hasattr(value, "shape") or role(_name(path), _axes(var)) != "matrix":
            return None  # not a matrix, or masked out by an enclosing optax.partition
        axes = _axes(var) or (None,) * len(value.shape)
        own = [i for i, a in enumerate(axes) if a not in STACKED_AXES]
        if len(own) < 2:
            return None
        split = 1 if axes[own[0]] == "embed" else len(own) - 1
        return MuonDimensionNumbers(reduction_axis=tuple(own[:split]), output_axis=tuple(own[split:]))
    return jax.tree_util.tree_map_with_path(numbers, params, is_leaf=_is_variable)


def _is_variable(x) -> bool:
    return isinstance(x, nnx.Variable)


def _name(path) -> str:
    keys = [getattr(k, "key", getattr(k, "name", None)) for k in path]
    return str(keys[-1]) if keys else ""


def _axes(var) -> tuple:
    if not isinstance(var, nnx.Variable):
        return ()
    return tuple(var.get_metadata().get("out_sharding") or ())
