"""Multi-process JAX: one process per host, started by SLURM, Kubernetes, MPI or by hand.

`start` initialises JAX's distributed runtime before any device is used (hardware.hosts > 1);
afterwards `jax.devices()` lists every process's devices and one mesh spans them. The other
helpers are the few things the processes must agree on: that they composed the same config
(`check_same_config`) and that a step every process took succeeded everywhere (`all_ok`).
Each process reads and hands over only its own rows of every global batch (data/loader.py,
`jax.make_array_from_process_local_data`).

Preemption agreement (SIGTERM on any process -> every process saves the same step) is JAX's
preemption sync manager (runtime/preemption.py); a dead or hung peer is detected by JAX's
coordination service, which ends every survivor after `distributed.heartbeat_timeout_s`
naming the silent process ("tasks are unhealthy (stopped sending heartbeats): 1").
"""

import hashlib
import importlib.metadata
import json
import logging

import jax
import numpy as np
from jax.experimental import multihost_utils

from hydralearn.config.flat import flatten
from hydralearn.config.schema import DistributedConfig, HardwareConfig, Platform
from hydralearn.config.schema.distributed import ALL_DEVICES, PER_PROCESS
from hydralearn.errors import ConfigError
from hydralearn.runtime.errors import RunError

logger = logging.getLogger(__name__)
# Keys that legitimately differ between the processes of one job.
PER_PROCESS_KEYS = ("distributed.process_id", "distributed.local_device_ids")
_MAX_LISTED = 5  # differing keys named in a refusal


def start(config: DistributedConfig, hardware: HardwareConfig) -> None:
    """Join the job's other processes (a no-op for a one-host run). Call before anything asks
    JAX for devices; ConfigError if the processes cannot be found from config or cluster."""
    if hardware.hosts == 1:
        return
    if hardware.platform is Platform.cpu:
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
    try:
        jax.distributed.initialize(
            coordinator_address=config.coordinator, num_processes=config.num_processes,
            process_id=config.process_id, local_device_ids=_local_device_ids(config, hardware),
            initialization_timeout=config.init_timeout_s,
            heartbeat_timeout_seconds=config.heartbeat_timeout_s)
    except ValueError as e:  # nothing given and no cluster JAX recognises
        raise ConfigError([
            f"hardware.hosts={hardware.hosts} but the processes cannot find each other ({e}); run "
            "under SLURM, Open MPI or a Kubernetes JobSet, or set distributed.coordinator=HOST:PORT "
            "distributed.num_processes=N distributed.process_id=I on every process"]) from None
    except Exception as e:  # noqa: BLE001 - the runtime's own error types are not public
        raise RunError(f"process {config.process_id if config.process_id is not None else '?'} "
                       f"could not join the job's other processes within "
                       f"distributed.init_timeout_s={config.init_timeout_s}: "
                       f"{str(e).strip().splitlines()[0]}") from None
    logger.info("process %d of %d; %d devices in all", jax.process_index(), jax.process_count(),
                jax.device_count())


def _local_device_ids(config: DistributedConfig, hardware: HardwareConfig) -> list[int] | None:
    ids = config.local_device_ids
    if ids == PER_PROCESS:
        return None
    if ids == ALL_DEVICES:
        # SLURM and MPI detection would give each process one GPU (its local rank); one process
        # per host drives them all. CPU and TPU processes see their host's devices anyway.
        accelerator = hardware.platform in (Platform.gpu, Platform.neuron)
        known = accelerator and hardware.devices_per_host > 0
        return list(range(hardware.devices_per_host)) if known else None
    return list(ids)


def is_primary() -> bool:
    """Process 0: the one that writes the run's records (metrics, summary, console)."""
    return jax.process_index() == 0


def all_ok(ok: bool) -> bool:
    """Whether every process reports `ok` (a collective: every process must call it)."""
    if jax.process_count() == 1:
        return ok
    return bool(np.all(multihost_utils.process_allgather(np.int32(ok))))


def check_same_config(container: dict) -> None:
    """Every process composed the same config and runs the same package versions; otherwise
    every process refuses (ConfigError) naming the first differing keys. A collective."""
    if jax.process_count() == 1:
        return
    mine = _canonical(container)
    digest = np.frombuffer(hashlib.sha256(mine).digest(), np.uint8)
    digests = multihost_utils.process_allgather(digest)
    if all((d == digests[0]).all() for d in digests):
        return
    configs = [json.loads(c) for c in _allgather_bytes(mine)]
    lines = []
    for index, other in enumerate(configs[1:], start=1):
        if diff := _differences(configs[0], other):
            more = [f"... {len(diff) - _MAX_LISTED} more"] if len(diff) > _MAX_LISTED else []
            lines.append(f"process {index} composed a different config than process 0: "
                         + "; ".join(diff[:_MAX_LISTED] + more))
    raise ConfigError(lines + ["start every process with the same command, overrides and "
                               "hydralearn version"])


def _canonical(container: dict) -> bytes:
    flat = {k: v for k, v in flatten(container).items() if k not in PER_PROCESS_KEYS}
    versions = {f"version.{p}": importlib.metadata.version(p) for p in ("hydralearn", "jax")}
    return json.dumps(flat | versions, sort_keys=True).encode()


def _allgather_bytes(data: bytes) -> list[bytes]:
    lengths = multihost_utils.process_allgather(np.int32(len(data)))
    padded = np.zeros(int(lengths.max()), np.uint8)
    padded[:len(data)] = np.frombuffer(data, np.uint8)
    gathered = multihost_utils.process_allgather(padded)
    return [bytes(row[:n]) for row, n in zip(gathered, lengths)]


def _differences(first: dict, other: dict) -> list[str]:
    return [f"{key}={other.get(key, '<absent>')!r} (process 0: {first.get(key, '<absent>')!r})"
            for key in sorted(first.keys() | other.keys()) if first.get(key) != other.get(key)]
