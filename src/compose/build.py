"""Build the program a resolved config describes: mesh, sharded state, jitted steps.

Order, fixed here for every model: (1) mesh from the resolved axes; (2) abstract model
(no allocation) and its logical axes -> NamedShardings through the sharding rules; (3) state
created inside jit directly into those shardings; (4) one jit around the training step
(compose/step.py: loss, gradient over microbatches, update, metrics), state donated. Remat
wraps the scanned block (conf/remat); attention is the kernel function resolved from
conf/kernel; activations are pinned by the sharding rules (compose/sharding.py).
"""

import dataclasses
import math
from typing import Callable

import jax
import jax.numpy as jnp
import optax
from flax import nnx
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from hydralearn.compose.kernels import attention_function, per_shard
from hydralearn.compose.mesh import batch_sharding, make_mesh
from hydralearn.compose.optim import build_optimizer
from hydralearn.compose.remat import block_transform
from hydralearn.config.schema import Kernel, NonFinite, Objective, TrainConfig
from hydralearn.compose.sharding import (activation_sharding, bytes_per_device, named_shardings,
                                         param_specs)
from hydralearn.compose.step import Step, TrainState
from hydralearn.layers.adapter.none_config import NoAdapterConfig
from hydralearn.layers.registry import layer_class


@dataclasses.dataclass(frozen=True)
class Program:
    config: TrainConfig
    mesh: Mesh
    graphdef: nnx.GraphDef
    state_shardings: TrainState
    batch_sharding: NamedSharding
    init_state: Callable[[], TrainState]  # jitted: creates the state already sharded
    # jitted: a fresh state (step 0, new optimizer state) holding the given weights, in the
    # layout of the model without adapter (`plain_config`); adapters start fresh
    start_from: Callable[[nnx.State], TrainState]
    plain_shardings: nnx.State  # shardings of those weights
    # Batches are (inputs, targets[, segments]); `segments` (packed documents) is a dict of
    # `positions` and `segment_ids` (B, T), segment 0 being padding, which the loss skips.
    train_step: Callable  # jitted: (state, inputs, targets[, segments]) -> (state, metrics); donates state
    eval_step: Callable  # jitted: (params, inputs, targets[, segments]) -> mean loss per token
    apply: Callable  # pure: (params, tokens[, positions, segment_ids]) -> DecoderOutput
    schedule: optax.Schedule
    num_params: int
    param_bytes_per_device: int  # parameters only, on the device holding the most
    # Parameters one token's matmuls touch: no embedding lookup, and of routed experts
    # (weights on the `experts` logical axis) only the top_k / num_experts share.
    matmul_params: int


def model_factory(config: TrainConfig, *, mesh: Mesh | None = None) -> Callable[[], nnx.Module]:
    """`mesh`: where the program runs; Pallas kernels are then mapped over its shards."""
    attention_fn = attention_function(config.kernel)
    if mesh is not None and config.kernel.name in (Kernel.pallas, Kernel.splash):
        attention_fn = per_shard(attention_fn, mesh=mesh, rules=config.sharding)
    remat = block_transform(config.remat)
    model_cls = layer_class(config.model)
    adapter = make_adapter(config)
    placement = {} if mesh is None else {"shard": activation_sharding(mesh, config.sharding)}

    def create() -> nnx.Module:
        rngs = nnx.Rngs(params=config.seed)
        model = model_cls(config.model, attention_fn=attention_fn, remat=remat, rngs=rngs, **placement)
        adapter(model, rngs)  # after the model: its own weights are drawn as without adapter
        return model
    return create


def make_adapter(config: TrainConfig):
    """The model's adapter (layers/adapter); a model config without one has none."""
    adapter = getattr(config.model, "adapter", None)
    if adapter is None:
        from hydralearn.layers.adapter.none import NoAdapter
        return NoAdapter(None)
    return layer_class(adapter)(adapter)


def abstract_params(config: TrainConfig, *, mesh: Mesh | None = None) -> tuple[nnx.GraphDef, nnx.State]:
    """Shapes, dtypes and logical axes of every parameter, with no allocation."""
    model = nnx.eval_shape(model_factory(config, mesh=mesh))
    graphdef, params = nnx.split(model, nnx.Param)
    return graphdef, params


def param_shardings(params: nnx.State, config: TrainConfig, mesh: Mesh) -> nnx.State:
    """NamedSharding of every parameter from its logical axes and conf/sharding's rules."""
    return named_shardings(param_specs(params, config.sharding), mesh)


def count_params(params: nnx.State) -> int:
    return sum(math.prod(x.shape) for x in jax.tree.leaves(params))


def build(config: TrainConfig, *, devices: list | None = None) -> Program:
    mesh = make_mesh(config.mesh.axes, devices)
    graphdef, abstract = abstract_params(config, mesh=mesh)
    optimizer = build_optimizer(config.optim, schedule=config.schedule,
                                total_steps=config.trainer.steps)
    tx = optimizer.transform
    replicated = NamedSharding(mesh, PartitionSpec())
    p_shardings = param_shardings(abstract, config, mesh)
    # Only the adapter's `trainable` parameters get gradients and optimizer state (all of
    # them without an adapter); the others are frozen.
    trainable = make_adapter(config).trainable
    abstract_trained, _ = nnx.split_state(abstract, trainable, ...)
    trained_shardings = param_shardings(abstract_trained, config, mesh)
    opt_shardings = _optimizer_shardings(tx, abstract_trained, trained_shardings, replicated=replicated)
    b_sharding = batch_sharding(mesh, config.sharding)
    state_shardings = TrainState(step=replicated, params=p_shardings, opt_state=opt_shardings)
    create = model_factory(config, mesh=mesh)

    def init_state() -> TrainState:
        params = nnx.state(create(), nnx.Param)
        return TrainState(step=jnp.zeros((), jnp.int32), params=params,
                          opt_state=tx.init(nnx.split_state(params, trainable, ...)[0]))

    plain = plain_config(config)  # the model itself, where it has no adapter
    plain_shardings = p_shardings if plain is config else \
        param_shardings(abstract_params(plain, mesh=mesh)[1], config, mesh)

    def start_from(plain: nnx.State) -> TrainState:
        params = nnx.state(create(), nnx.Param)
        pure = nnx.to_pure_dict(params)  # the random weights are overwritten: XLA drops them
        _graft(pure, nnx.to_pure_dict(plain))
        nnx.replace_by_pure_dict(params, pure)
        return TrainState(step=jnp.zeros((), jnp.int32), params=params,
                          opt_state=tx.init(nnx.split_state(params, trainable, ...)[0]))

    step = Step(graphdef=graphdef, trainable=trainable, optimizer=optimizer,
                microbatches=config.trainer.grad_accum,
                skip_nonfinite=config.trainer.nonfinite is NonFinite.skip,
                batch_sharding=b_sharding, trained_shardings=trained_shardings,
                masked_targets=config.objective.kind is Objective.sft)

    num_params = count_params(abstract)
    return Program(
        config=config, mesh=mesh, graphdef=graphdef, state_shardings=state_shardings,
        batch_sharding=b_sharding,
        init_state=jax.jit(init_state, out_shardings=state_shardings),
        start_from=jax.jit(start_from, in_shardings=(plain_shardings,), out_shardings=state_shardings),
        plain_shardings=plain_shardings,
        train_step=_segments_optional(jax.jit(
            step.train, donate_argnums=0, in_shardings=(state_shardings, b_sharding, b_sharding, b_sharding),
            out_shardings=(state_shardings, replicated))),
        eval_step=_segments_optional(jax.jit(
            step.eval_loss, in_shardings=(p_shardings, b_sharding, b_sharding, b_sharding))),
        apply=step.apply, schedule=optimizer.schedule, num_params=num_params,
        param_bytes_per_device=bytes_per_device(abstract, p_shardings),
        matmul_params=num_params - _lookup_only_params(config) - inactive_expert_params(abstract, config))


def plain_config(config: TrainConfig) -> TrainConfig:
    """The config without its model's adapter: the layout checkpoints of the base model use
    (the config itself where the adapter is none)."""
    if isinstance(getattr(config.model, "adapter", None), (type(None), NoAdapterConfig)):
        return config
    return dataclasses.replace(config, model=dataclasses.replace(config.model, adapter=None))


def _graft(full: dict, plain: dict) -> None:
    """Put the plain model's weights into `full`, where an adapter keeps a weight it wraps
    under `base` (layers/adapter)."""
    for key, value in plain.items():
        if isinstance(value, dict):
            _graft(full[key], value)
        elif isinstance(full[key], dict):
            full[key]["base"] = value
        else:
            full[key] = value


def _segments_optional(jitted) -> Callable:
    """`jitted(a, inputs, targets[, segments])`: jit with in_shardings wants every positional
    argument, so a left-out `segments` is passed as None (no leaves: one sequence per row)."""
    def call(*args):
        return jitted(*args, *(None,) * (4 - len(args)))
    call.lower = lambda *args: jitted.lower(*args, *(None,) * (4 - len(args)))
    return call


def _optimizer_shardings(tx, abstract: nnx.State, p_shardings: nnx.State, *, replicated):
    """Optimizer state shards like its parameter where it has the parameter's shape (moments,
    momenta); other state (Adafactor's row and column statistics, counts) is replicated.

    optax states mirror the parameter tree, so a state leaf's key path ends with its
    parameter's (optax.tree_map_params cannot see through optax.partition's masked states)."""
    is_variable = lambda x: isinstance(x, nnx.Variable)  # noqa: E731
    params = jax.tree_util.tree_flatten_with_path(abstract, is_leaf=is_variable)[0]
    shardings = jax.tree.leaves(p_shardings, is_leaf=lambda x: isinstance(x, NamedSharding))
    by_path = {path: (var.shape, sharding) for (path, var), sharding in zip(params, shardings)}

    def sharding(path, leaf):
        if not hasattr(leaf.get_value() if is_variable(leaf) else leaf, "shape"):
            return leaf  # masked out by optax.partition: holds no array
        for start in range(len(path)):
            if path[start:] in by_path:
                shape, found = by_path[path[start:]]
                return found if leaf.shape == shape else replicated
        return replicated
    return jax.tree_util.tree_map_with_path(sharding, jax.eval_shape(tx.init, abstract),
                                            is_leaf=is_variable)


def _lookup_only_params(config: TrainConfig) -> int:
    """Embedding entries used only by lookup (not by a matmul): the table when untied."""
    model = config.model
    return 0 if model.tie_embeddings else model.vocab_size * model.d_model


def inactive_expert_params(params: nnx.State, config: TrainConfig) -> int:
    """Routed-expert weights a token does not use: (1 - active share) of each `experts` weight."""
    share = getattr(config.model.ffn, "active_expert_share", 1.0)
    specs = jax.tree.leaves(nnx.get_partition_spec(params), is_leaf=lambda x: isinstance(x, PartitionSpec))
    sizes = [math.prod(x.shape) for x in jax.tree.leaves(params)]
    return round(sum(n for n, spec in zip(sizes, specs) if "experts" in spec) * (1 - share))


def flops_per_token(*, matmul_params: int, num_layers: int, attention_dim: int, seq_len: int,
                    window: int | None = None) -> float:
    """Training FLOPs per token: 6N + 12 * L * d_attn * K (Kaplan et al.; PaLM appendix B), the
    one count of the planner, the trainer's MFU and the compiled-memory ledger.

    N: the weights used by matmuls (not the embedding lookup; routed experts by their active
    share). Attention, per layer and attended key: q.k and the weighted v are 2 * d_attn FLOPs
    each forward, x3 with the backward pass. K: the mean keys a query attends. Causal masking
    leaves the lower triangle of the T x T scores, position t attending min(t + 1, w) keys
    (w: a sliding `window`, T without), so K = k * (2T - k + 1) / (2T) with k = min(w, T):
    (T + 1) / 2 with no window. PaLM counts the full square (K = T); MaxText halves it for
    causal attention (K = T / 2, in its FLOPs count since at least March 2024).
    """
    k = seq_len if window is None else min(window, seq_len)
    mean_keys = k * (2 * seq_len - k + 1) / (2 * seq_len)  # (sum_{t<k} (t+1) + (T-k) * k) / T
    return 6.0 * matmul_params + 12.0 * num_layers * attention_dim * mean_keys
