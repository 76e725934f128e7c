"""The training step, read top to bottom: the model's loss on a batch, its gradient (over
microbatches with trainer.grad_accum), the optimizer's update (clipping is part of it,
conf/optim), the metrics. compose/build.py makes a `Step` and jits `Step.train` once, state
donated, with the shardings it placed.

Batches are (inputs, targets[, segments]): (B, T) int32 arrays, and for packed documents
(data.packing=segments) a dict of `positions` and `segment_ids` (B, T), segment 0 being
padding, which the loss leaves out. With objective=sft, targets below 0 are context (the
user's turns, the template) or padding: the loss is the mean over the other targets of the
whole batch, all microbatches together (`_gradients`).
"""

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import nnx
from jax.sharding import NamedSharding

from hydralearn.compose.accumulate import accumulate, microbatch_sharding
from hydralearn.compose.optim import Optimizer
from hydralearn.layers.loss import cross_entropy, masked_cross_entropy


@jax.tree_util.register_dataclass
@dataclasses.dataclass
class TrainState:
    step: jax.Array
    params: nnx.State
    opt_state: optax.OptState


@dataclasses.dataclass(frozen=True, kw_only=True)
class Step:
    graphdef: nnx.GraphDef  # the model without its weights
    trainable: Any  # nnx filter: the parameters that learn (an adapter's only, with one)
    optimizer: Optimizer
    microbatches: int  # trainer.grad_accum
    skip_nonfinite: bool  # trainer.nonfinite=skip: a non-finite step keeps the old state
    batch_sharding: NamedSharding
    trained_shardings: nnx.State  # of the trainable parameters (the gradient accumulator's)
    masked_targets: bool = False  # objective=sft: targets < 0 are no targets

    def apply(self, params: nnx.State, tokens, positions=None, segment_ids=None):
        """The model on (B, T) tokens -> DecoderOutput (float32 logits, auxiliary scalars)."""
        return nnx.merge(self.graphdef, params)(tokens, positions=positions, segment_ids=segment_ids)

    def token_loss(self, params: nnx.State, inputs, targets, segments=None, count=None):
        """(mean cross-entropy per target token, the model's output); with masked targets the
        sum is divided by `count` (default: this batch's target count)."""
        out = self.apply(params, inputs, **(segments or {}))
        if self.masked_targets:
            return masked_cross_entropy(out.logits, targets, count), out
        mask = None if segments is None else segments["segment_ids"] != 0
        return cross_entropy(out.logits, targets, mask), out

    def objective(self, params: nnx.State, inputs, targets, segments=None, count=None):
        """(what the gradient minimises: cross-entropy + the layers' `*_loss` terms, metrics)."""
        loss, out = self.token_loss(params, inputs, targets, segments, count)
        extra = sum(v for k, v in out.aux.items() if k.endswith("_loss"))
        return loss + extra, {"loss": loss, **out.aux}

    def train(self, state: TrainState, inputs, targets, segments=None):
        """One optimizer step -> (new state, metrics)."""
        trained, frozen = nnx.split_state(state.params, self.trainable, ...)
        grads, metrics = self._gradients(trained, frozen, (inputs, targets, segments))
        updates, opt_state = self.optimizer.transform.update(grads, state.opt_state, trained)
        params = nnx.merge_state(optax.apply_updates(trained, updates), frozen)
        grad_norm = optax.tree.norm(grads)
        finite = jnp.isfinite(metrics["loss"]) & jnp.isfinite(grad_norm)
        metrics |= {"grad_norm": grad_norm, "lr": self.optimizer.schedule(state.step),
                    "nonfinite": (~finite).astype(jnp.int32)}
        if self.skip_nonfinite:  # the old weights and moments; the step still counts
            params = _keep_if(finite, params, state.params)
            opt_state = _keep_if(finite, opt_state, state.opt_state)
        return TrainState(step=state.step + 1, params=params, opt_state=opt_state), metrics

    def eval_loss(self, params: nnx.State, inputs, targets, segments=None):
        return self.token_loss(params, inputs, targets, segments)[0]

    def _gradients(self, trained: nnx.State, frozen: nnx.State, batch: tuple):
        """(gradients of the trainable parameters, metrics), over `microbatches` parts."""
        # Masked targets: each microbatch's sum over the batch's mean count per microbatch, so
        # the mean of the parts is the whole batch's mean per target, however they are spread.
        count = (jnp.sum(batch[1] >= 0) / self.microbatches) if self.masked_targets else None

        def grad_fn(params, *part):  # d objective / d trainable; the frozen weights are constants
            return jax.grad(lambda p: self.objective(nnx.merge_state(p, frozen), *part, count=count),
                            has_aux=True)(params)
        return accumulate(grad_fn, trained, batch, microbatches=self.microbatches,
                          sharding=microbatch_sharding(self.batch_sharding),
                          param_shardings=self.trained_shardings)


def _keep_if(finite: jax.Array, new, old):
    return jax.tree.map(lambda n, o: jnp.where(finite, n, o), new, old)
