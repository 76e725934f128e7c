"""Every `auto` of a validated config made concrete for the hardware the run has (or, when
planning, the hardware the profile states); the result is what runs and what is saved in
the run's resolved_config.yaml."""

import dataclasses
from typing import Any

import jax
import numpy as np

from hydralearn.compose import cache
from hydralearn.compose.hardware import Host, resolve_hardware
from hydralearn.compose.kernels import AttentionShape, kernel_errors, resolve_kernel
from hydralearn.compose.mesh import MeshFacts, auto_axes, resolve_axes
from hydralearn.compose.peak import measured_cpu_peak
from hydralearn.compose.remat import remat_errors, resolve_remat
from hydralearn.config.schema import AUTO, MeshConfig, MeshMode, TrainConfig
from hydralearn.config.schema.logger import missing_packages
from hydralearn.compose.sharding import (batch_errors, indivisible, missing_rules, param_specs,
                                         unused_axes)
from hydralearn.data.config import Packing
from hydralearn.data.tokenizer import padded_vocab_size
from hydralearn.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class Resolved:
    """A run's config with every auto concrete, and its model's abstract parameters (shapes,
    dtypes, logical axes; no allocation), built once: the plan, the memory check and the
    program's shardings read them instead of building the model again."""
    config: TrainConfig
    params: Any  # nnx.State of jax.ShapeDtypeStruct


def resolve(config: TrainConfig, *, device_count: int | None = None,
            host: Host | None = None) -> TrainConfig:
    """`resolved(...).config`: the config alone."""
    return resolved(config, device_count=device_count, host=host).config


def resolved(config: TrainConfig, *, device_count: int | None = None,
             host: Host | None = None) -> Resolved:
    """Every auto made concrete; ConfigError (all problems at once) if the run is impossible.

    `host` is what the run really has (the CLI passes Host.current()); without it the
    hardware profile is assumed present with `device_count` devices (planning, tests), and a
    CPU's measured peak and the compilation cache's directory stay `auto` so plans and goldens
    do not depend on the machine.
    """
    host = host or Host.assumed(config.hardware, device_count=device_count)
    hardware, errors = resolve_hardware(config.hardware, host)
    if host.actual and hardware.peak_flops_per_device == AUTO:
        # Simulated CPU devices share the host's cores: each gets its share of the peak.
        per_device = measured_cpu_peak() / hardware.devices_per_host
        hardware = dataclasses.replace(hardware, peak_flops_per_device=per_device)
    model = config.model
    if model.vocab_size == AUTO:
        model = dataclasses.replace(model, vocab_size=padded_vocab_size(config.data))
    if model.compute_dtype == AUTO:
        model = dataclasses.replace(model, compute_dtype=hardware.preferred_compute_dtype)
    shape = AttentionShape(compute_dtype=model.compute_dtype, head_dim=model.resolved_head_dim,
                           seq_len=config.data.seq_len,
                           segments=config.data.packing is Packing.segments)
    kernel = resolve_kernel(config.kernel, preferred=hardware.preferred_kernel, host=host, shape=shape)
    remat = resolve_remat(config.remat, preferred=hardware.preferred_remat)
    errors += kernel_errors(kernel, host=host, shape=shape)
    trainer = config.trainer
    # Packages and the compilation cache's directory matter only where the run starts.
    if host.actual:
        errors += missing_packages(config.logger)
        trainer = dataclasses.replace(trainer, compile_cache=cache.resolved(trainer.compile_cache))
    errors += remat_errors(remat, memory_kinds=host.memory_kinds, host=host.describe())
    config = dataclasses.replace(config, model=model, hardware=hardware, kernel=kernel, remat=remat,
                                 trainer=trainer)
    from hydralearn.compose.build import abstract_params  # flax; only once validation passed

    _, params = abstract_params(config)
    try:
        axes = _mesh_axes(config, host=host, params=params)
    except ValueError as e:
        raise ConfigError(errors + [str(e)]) from None
    errors += sharding_errors(config, axes=axes, params=params)
    if errors:
        raise ConfigError(errors)
    # The mesh's axes change no parameter's shape: the abstract parameters stay valid.
    return Resolved(config=dataclasses.replace(config, mesh=MeshConfig(mode=MeshMode.fixed, axes=axes)),
                    params=params)


def _mesh_axes(config: TrainConfig, *, host: Host, params) -> dict[str, int]:
    if config.mesh.mode is MeshMode.fixed:
        return resolve_axes(config.mesh.axes, host.device_count)
    num_params = sum(v.size for v in jax.tree.leaves(params))
    facts = MeshFacts(
        device_count=host.device_count, devices_per_host=config.hardware.devices_per_host,
        # parameters, gradients and Adam's two moments, all in the parameter dtype
        train_bytes=4.0 * num_params * np.dtype(config.model.param_dtype).itemsize,
        device_memory_bytes=config.hardware.device_memory_bytes,
        used_axes=frozenset(config.sharding.used_mesh_axes()))
    return auto_axes(config.mesh.axes, facts)


def sharding_errors(config: TrainConfig, *, axes: dict[str, int], params) -> list[str]:
    """Rules that miss a logical axis, leave a mesh axis idle, or split a dimension unevenly."""
    rules = config.sharding
    errors = missing_rules(params, rules) + unused_axes(rules, axes)
    errors += batch_errors(batch_size=config.data.batch_size, seq_len=config.data.seq_len,
                           rules=rules, axes=axes, grad_accum=config.trainer.grad_accum)
    if not errors:
        errors += indivisible(params, param_specs(params, rules), axes)
    return errors
