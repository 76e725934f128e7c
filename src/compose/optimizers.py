"""The optimizers of conf/optim (schemas: config/schema/optim.py), each one optax call.

A builder gets its config, the learning-rate schedule (peak optim.lr) and one weight-decay
rate; compose/optim.py calls it once per distinct rate of `optim.weight_decay_by_role` and
gives each instance the parameters of the roles with that rate. A rate r is decoupled decay
scaled by the schedule: each step a weight shrinks by lr(t) * r (SGD: r * w is added to the
gradient before the momentum, as torch.optim.SGD does).
"""

import optax
from optax import contrib

from hydralearn.compose.param_roles import muon_dimension_numbers


def adamw(config, *, learning_rate: optax.Schedule, weight_decay: float) -> optax.GradientTransformation:
    return optax.adamw(learning_rate, b1=config.b1, b2=config.b2, eps=config.eps,
                       weight_decay=weight_decay)


def lion(config, *, learning_rate: optax.Schedule, weight_decay: float) -> optax.GradientTransformation:
    return optax.lion(learning_rate, b1=config.b1, b2=config.b2, weight_decay=weight_decay)


def sgd(config, *, learning_rate: optax.Schedule, weight_decay: float) -> optax.GradientTransformation:
    return optax.chain(optax.add_decayed_weights(weight_decay),
                       optax.sgd(learning_rate, momentum=config.momentum or None,
                                 nesterov=config.nesterov))


def adafactor(config, *, learning_rate: optax.Schedule, weight_decay: float) -> optax.GradientTransformation:
    # optax adds Adafactor's decay after the learning rate: scale it by the schedule here.
    decay = (lambda step: weight_decay * learning_rate(step)) if weight_decay else None
    return optax.adafactor(
        learning_rate, min_dim_size_to_factor=config.min_dim_size_to_factor,
        decay_rate=config.decay_rate, multiply_by_parameter_scale=config.multiply_by_parameter_scale,
        clipping_threshold=config.clipping_threshold or None, momentum=config.momentum,
        eps=config.eps, weight_decay_rate=decay)


def muon(config, *, learning_rate: optax.Schedule, weight_decay: float) -> optax.GradientTransformation:
    adam_share = config.adam_lr / config.lr
    return contrib.muon(
        learning_rate, ns_steps=config.ns_steps, beta=config.beta, nesterov=config.nesterov,
        weight_decay=weight_decay, adam_b1=config.adam_b1, adam_b2=config.adam_b2,
        adam_weight_decay=weight_decay, adam_learning_rate=lambda step: adam_share * learning_rate(step),
        muon_weight_dimension_numbers=muon_dimension_numbers)
