"""The checkpoint names the layers tag are exactly those declared once in
layers/checkpoint_names.py (the names remat.names accepts and the memory estimate costs): read
from the traced forward pass of every feed-forward option, not from the source."""

import jax
import numpy as np
import pytest

from hydralearn.compose.build import model_factory
from hydralearn.layers.checkpoint_names import CHECKPOINT_NAMES
from tests.conftest import tiny_config


def tagged_names(jaxpr) -> set[str]:
    """The name of every `checkpoint_name` in a jaxpr and the jaxprs inside it (scan, remat)."""
    found = set()
    for eqn in jaxpr.eqns:
        if eqn.primitive.name == "name":
            found.add(eqn.params["name"])
        for param in eqn.params.values():
            for inner in param if isinstance(param, (tuple, list)) else (param,):
                inner = getattr(inner, "jaxpr", inner)  # a ClosedJaxpr's Jaxpr
                if hasattr(inner, "eqns"):
                    found |= tagged_names(inner)
    return found


@pytest.mark.parametrize("ffn", ["swiglu", "gelu", "moe"])
def test_layers_tag_exactly_the_declared_names(ffn):
    model = model_factory(tiny_config(f"model/ffn={ffn}"))()
    tokens = np.zeros((2, 8), np.int32)
    traced = jax.make_jaxpr(lambda t: model(t).logits)(tokens)
    assert tagged_names(traced.jaxpr) == set(CHECKPOINT_NAMES)
