"""Schema of conf/distributed: how the processes of a multi-host job find each other.

A job with `hardware.hosts > 1` runs one process per host; each starts JAX's distributed
runtime before it touches a device (runtime/distributed.py). What is left null here is
detected by JAX from the cluster the process runs in (SLURM, Open MPI, Kubernetes indexed
Jobs/JobSets, Cloud TPU) or read from JAX_COORDINATOR_ADDRESS / JAX_LOCAL_DEVICE_IDS.
"""

import dataclasses
from typing import Any, Optional

ALL_DEVICES = "all"  # local_device_ids: every accelerator of the host (one process per host)
PER_PROCESS = "per_process"  # local_device_ids: JAX's cluster default (one GPU per process)


@dataclasses.dataclass(kw_only=True)
class DistributedConfig:
    coordinator: Optional[str] = None  # host:port of process 0; null: detected
    num_processes: Optional[int] = None  # null: detected (it must equal hardware.hosts)
    process_id: Optional[int] = None  # 0 .. num_processes-1; null: detected (differs per process)
    # Devices this process drives: `all` (every device of the host: hardware.devices_per_host
    # of them), `per_process` (JAX's cluster default: the local rank's GPU) or a list of ids.
    local_device_ids: Any = dataclasses.field(default=ALL_DEVICES, metadata={"json_schema": {
        "anyOf": [{"enum": [ALL_DEVICES, PER_PROCESS]},
                  {"type": "array", "items": {"type": "integer", "minimum": 0}}]}})
    init_timeout_s: int = 300  # how long to wait for every process to join
    # A peer silent (dead, hung, cut off) this long ends the job: the survivors exit non-zero
    # naming it, instead of waiting in a collective forever.
    heartbeat_timeout_s: int = 100

    def errors(self) -> list[str]:
        out = [f"distributed.{n}={getattr(self, n)} must be positive"
               for n in ("init_timeout_s", "heartbeat_timeout_s") if getattr(self, n) <= 0]
        if self.num_processes is not None and self.num_processes < 1:
            out.append(f"distributed.num_processes={self.num_processes} must be at least 1")
        if self.process_id is not None and not (
                0 <= self.process_id < (self.num_processes or self.process_id + 1)):
            out.append(f"distributed.process_id={self.process_id} must be in 0..num_processes-1")
        ids = self.local_device_ids
        if not (ids in (ALL_DEVICES, PER_PROCESS) or (
                isinstance(ids, (list, tuple)) and ids
                and all(isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in ids))):
            out.append(f"distributed.local_device_ids={ids!r} must be {ALL_DEVICES}, "
                       f"{PER_PROCESS} or a list of device ids")
        if self.coordinator is not None and not _host_port(self.coordinator):
            out.append(f"distributed.coordinator={self.coordinator!r} must be host:port "
                       "(e.g. 10.0.0.1:8476)")
        return out


def _host_port(address: str) -> bool:
    host, _, port = address.rpartition(":")
    return bool(host) and port.isdigit()
