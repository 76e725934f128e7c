"""Every optimizer option against optax called directly, weight decay by role against AdamW's
closed form, and parameter roles read from real models."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx
from optax.contrib import MuonDimensionNumbers

from hydralearn.config import compose as compose_config
from hydralearn.compose.build import abstract_params, build
from hydralearn.compose.optim import build_optimizer
from hydralearn.compose.param_roles import roles
from tests.conftest import tiny_config

# One parameter of every role, with the logical axes our layers give them; stacked `layers`
# and `experts` axes included.
SHAPES = {
    "embed/table": ((16, 8), ("vocab", "embed"), "embed"),
    "attention/q": ((2, 8, 2, 4), ("layers", "embed", "heads", "head_dim"), "matrix"),
    "attention/o": ((2, 2, 4, 8), ("layers", "heads", "head_dim", "embed"), "matrix"),
    "ffn/down": ((2, 3, 12, 8), ("layers", "experts", "mlp", "embed"), "matrix"),
    "norm/scale": ((2, 8), ("layers", "embed"), "norm"),
    "norm/bias": ((2, 8), ("layers", "embed"), "bias"),
    "out/head": ((8, 16), ("embed", "vocab"), "head"),
}
LR = 0.01


def _nested(flat: dict) -> dict:
    out: dict = {}
    for path, value in flat.items():
        module, name = path.split("/")
        out.setdefault(module, {})[name] = value
    return out


def _arrays(seed: int) -> dict:
    rng = np.random.default_rng(seed)
    return {p: jnp.asarray(rng.normal(size=shape), jnp.float32) for p, (shape, _, _) in SHAPES.items()}


def _params(arrays: dict) -> nnx.State:
    with nnx.use_eager_sharding(False):  # logical axes as metadata only: no mesh here
        return nnx.State(_nested({p: nnx.Param(a, out_sharding=SHAPES[p][1]) for p, a in arrays.items()}))


def _by_role(value_of) -> dict:
    return _nested({p: value_of(role) for p, (_, _, role) in SHAPES.items()})


def _ours(overrides: list[str], grads: list[dict], params: dict) -> dict:
    """Our optimizer, with a constant lr of LR, after len(grads) updates: plain arrays."""
    config = compose_config.load(["schedule=constant", "schedule.warmup_steps=0", f"optim.lr={LR}",
                                  *overrides])
    tx = build_optimizer(config.optim, schedule=config.schedule, total_steps=10).transform
    return nnx.to_pure_dict(_updated(tx, [_params(g) for g in grads], _params(params)))


def _reference(tx: optax.GradientTransformation, grads: list[dict], params: dict) -> dict:
    """optax itself on plain nested dicts, after the same global-norm clipping."""
    tx = optax.chain(optax.clip_by_global_norm(1.0), tx)
    return _updated(tx, [_nested(g) for g in grads], _nested(params))


def _updated(tx: optax.GradientTransformation, grads: list, params):
    state = tx.init(params)
    for g in grads:
        updates, state = tx.update(g, state, params)
        params = optax.apply_updates(params, updates)
    return params


DECAYED = _by_role(lambda role: role in ("matrix", "head"))  # the default weight_decay_by_role

REFERENCES = {
    "adamw": ([], lambda: optax.adamw(LR, b1=0.9, b2=0.95, eps=1e-8, weight_decay=0.1, mask=DECAYED)),
    "lion": ([], lambda: optax.lion(LR, b1=0.9, b2=0.99, weight_decay=0.1, mask=DECAYED)),
    "sgd": ([], lambda: optax.chain(optax.add_decayed_weights(0.1, mask=DECAYED),
                                    optax.sgd(LR, momentum=0.9))),
    # Small arrays: factor every dimension pair of at least 4, so factored statistics are tested.
    "adafactor": (["optim.min_dim_size_to_factor=4"], lambda: optax.adafactor(
        LR, min_dim_size_to_factor=4, decay_rate=0.8, clipping_threshold=1.0,
        multiply_by_parameter_scale=True, eps=1e-30, weight_decay_rate=lambda _: 0.1 * LR,
        weight_decay_mask=DECAYED)),
    # optax's Muon takes one AdamW decay for every non-matrix weight: the head's set to 0 here.
    "muon": (["optim.weight_decay_by_role.head=0"], lambda: optax.contrib.muon(
        LR, ns_steps=5, beta=0.95, nesterov=True, weight_decay=0.1,
        weight_decay_mask=_by_role(lambda role: role == "matrix"), adam_b1=0.9, adam_b2=0.95,
        adam_weight_decay=0.0, adam_learning_rate=3e-3,
        # Written out by hand: inputs, then outputs of each matmul weight; stacked axes batched.
        muon_weight_dimension_numbers=_nested({
            "embed/table": None, "norm/scale": None, "norm/bias": None, "out/head": None,
            "attention/q": MuonDimensionNumbers(reduction_axis=(1,), output_axis=(2, 3)),
            "attention/o": MuonDimensionNumbers(reduction_axis=(1, 2), output_axis=(3,)),
            "ffn/down": MuonDimensionNumbers(reduction_axis=(2,), output_axis=(3,))}))),
}


@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_optimizer_matches_optax(name):
    overrides, reference = REFERENCES[name]
    params = _arrays(0)
    grads = [_arrays(1), jax.tree.map(lambda g: 0.01 * g, _arrays(2))]  # clipped, then not
    ours = _ours([f"optim={name}", *overrides], grads, params)
    expected = _reference(reference(), grads, params)
    for (path, a), b in zip(jax.tree_util.tree_leaves_with_path(ours), jax.tree.leaves(expected)):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7, err_msg=f"{name} {path}")
    assert any(not np.allclose(a, b) for a, b in zip(jax.tree.leaves(ours), jax.tree.leaves(_nested(params))))


def test_weight_decay_by_role_is_adamw_decay_with_zero_gradients():
    """With zero gradients AdamW only decays (Loshchilov & Hutter): w -= lr * rate * w, each role
    at its own rate; two nonzero rates use two optimizer instances."""
    rates = {"matrix": 0.1, "head": 0.2, "embed": 0.05, "norm": 0.0, "bias": 0.0}
    params = _arrays(0)
    zeros = jax.tree.map(jnp.zeros_like, params)
    ours = _ours(["optim=adamw", *(f"optim.weight_decay_by_role.{r}={v}" for r, v in rates.items())],
                 [zeros], params)
    expected = _nested({p: (1 - LR * rates[SHAPES[p][2]]) * a for p, a in params.items()})
    for a, b in zip(jax.tree.leaves(ours), jax.tree.leaves(expected)):
        np.testing.assert_allclose(a, b, rtol=1e-6)


def test_roles_of_real_models():
    config = tiny_config("model=mixtral_tiny", "model/norm=layer")
    _, params = abstract_params(config)
    found = {".".join(map(str, path)): role for path, role in nnx.to_flat_state(roles(params))}
    assert found == {
        "embed.table": "embed", "head": "head",
        **{f"{norm}.{name}": role for norm in ("final_norm", "blocks.attn_norm", "blocks.ffn_norm")
           for name, role in (("scale", "norm"), ("bias", "bias"))},
        **{f"blocks.attention.{n}": "matrix" for n in "qkvo"},
        **{f"blocks.ffn.{n}": "matrix" for n in ("gate", "up", "down", "router")}}


@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_optimizer_state_shards_with_its_parameters(name):
    """On 8 devices (fsdp): each moment shards like its parameter, other state (Adafactor's
    factored statistics, counts) is replicated, and the step lowers with those shardings."""
    # Adafactor: factored second moments, and a first moment that must shard.
    factored = ["optim.min_dim_size_to_factor=16", "optim.momentum=0.9"] if name == "adafactor" else []
    config = tiny_config(f"optim={name}", *factored, "mesh.axes.fsdp=8", device_count=8)
    program = build(config, devices=jax.devices())
    params = {path: var.shape for path, var in nnx.to_flat_state(abstract_params(config)[1])}
    table_spec = program.state_shardings.params["embed"]["table"].spec
    state = jax.eval_shape(program.init_state)
    leaves = jax.tree_util.tree_leaves_with_path(state.opt_state)
    sharded = [leaf for path, leaf in leaves if leaf.shape == params[("embed", "table")]
               and "['embed']['table']" in jax.tree_util.keystr(path)]
    assert sharded and all(leaf.sharding.spec == table_spec for leaf in sharded)
    assert all(leaf.sharding.is_fully_replicated for _, leaf in leaves if leaf.shape not in params.values())
    batch = jax.ShapeDtypeStruct((config.data.batch_size, config.data.seq_len), jnp.int32,
                                 sharding=program.batch_sharding)
    program.train_step.lower(state, batch, batch)
