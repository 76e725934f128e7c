"""`hydralearn-k8s --image IMAGE <overrides> > job.yaml`: a Kubernetes JobSet for the experiment.

One pod per host (`hardware.hosts`), each running `hydralearn-train` with the same overrides
and driving all of its host's accelerators; pod 0 is the coordinator, reached through the
JobSet's headless service (`<jobset>-workers-0-0.<jobset>`), and each pod's process id is its
completion index. A failed pod fails its Job (backoffLimit 0) and the JobSet restarts every
pod (failurePolicy.maxRestarts); the restarted job resumes from its newest checkpoint, which
is what makes restarting everything safe. Runs live on a shared volume (a
PersistentVolumeClaim, ReadWriteMany) mounted at /runs. docs/scale-out.md.

The pod's command is an argument list (no shell reads it): the user's overrides go in as
given, and the overrides added here hold no user text (the run directory names `${name}`
rather than its value), so no value needs quoting for Hydra's override grammar either.
"""

import argparse
import re
import sys

import yaml

from hydralearn.cli.errors import exit_with
from hydralearn.config import compose as compose_config
from hydralearn.config.schema import TrainConfig
from hydralearn.errors import ConfigError

COORDINATOR_PORT = 8476
RUNS_MOUNT = "/runs"
REPLICATED_JOB = "workers"
# The device-plugin resource of each platform's accelerators (none for CPU hosts).
RESOURCE = {"gpu": "nvidia.com/gpu", "tpu": "google.com/tpu", "neuron": "aws.amazon.com/neuron"}
# Pod hostnames add "-workers-0-0" to the JobSet's name and must stay within 63 characters.
_MAX_NAME = 40
# An image reference, [host[:port]/]path[:tag][@digest], as the OCI distribution spec writes it.
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_IMAGE = re.compile(rf"(?:[A-Za-z0-9.-]+(?::[0-9]+)?/)?{_COMPONENT}(?:/{_COMPONENT})*"
                    r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@[a-z0-9]+(?:[+._-][a-z0-9]+)*:[0-9a-fA-F]{32,})?")
# A PersistentVolumeClaim's name: a DNS subdomain (RFC 1123).
_DNS_LABEL = r"[a-z0-9](?:[-a-z0-9]*[a-z0-9])?"
_SUBDOMAIN = re.compile(rf"{_DNS_LABEL}(?:\.{_DNS_LABEL})*")


def main() -> None:
    parser = argparse.ArgumentParser(prog="hydralearn-k8s", description=__doc__.splitlines()[0])
    parser.add_argument("--image", required=True, help="container image with hydralearn installed")
    parser.add_argument("--pvc", default="hydralearn-runs",
                        help="PersistentVolumeClaim (ReadWriteMany) holding the run directories")
    parser.add_argument("--max-restarts", type=int, default=3,
                        help="restarts of the whole JobSet after a pod fails")
    parser.add_argument("overrides", nargs="*", help="hydralearn-train overrides")
    args = parser.parse_args()
    try:
        config = compose_config.load(args.overrides)
        check_usable(config, image=args.image, pvc=args.pvc)
    except ConfigError as e:
        exit_with(e)
    sys.stdout.write(yaml.safe_dump(jobset(config, overrides=args.overrides, image=args.image,
                                           pvc=args.pvc, max_restarts=args.max_restarts),
                                    sort_keys=False))


def check_usable(config: TrainConfig, *, image: str, pvc: str) -> None:
    """Refuse what Kubernetes cannot take, before any YAML is written (the run's name is
    checked with the config: config/run_dir.name_errors)."""
    errors = []
    if not _IMAGE.fullmatch(image):
        errors.append(f"--image {image!r} is not a container image reference "
                      "([registry[:port]/]name[:tag][@digest], lowercase name)")
    if not (_SUBDOMAIN.fullmatch(pvc) and len(pvc) <= 253):
        errors.append(f"--pvc {pvc!r} is not a Kubernetes object name "
                      "(lowercase letters, digits, '-' and '.')")
    if errors:
        raise ConfigError(errors)


def jobset_name(config: TrainConfig) -> str:
    """A DNS label from the run's name (lowercase letters, digits and '-')."""
    name = re.sub(r"[^a-z0-9-]+", "-", config.name.lower()).strip("-")[:_MAX_NAME].strip("-")
    return name or "hydralearn"


def command(config: TrainConfig, overrides: list[str]) -> list[str]:
    """hydralearn-train with the user's overrides and what each pod needs to find the others."""
    name, hosts = jobset_name(config), config.hardware.hosts
    return ["hydralearn-train", *overrides,
            f"distributed.coordinator={name}-{REPLICATED_JOB}-0-0.{name}:{COORDINATOR_PORT}",
            f"distributed.num_processes={hosts}",
            # Kubernetes sets JOB_COMPLETION_INDEX (0..hosts-1) in every pod of an Indexed Job.
            "distributed.process_id=${oc.env:JOB_COMPLETION_INDEX}",
            # Hydra resolves ${name} in each pod: the name's text never passes through the override parser.
            f"hydra.run.dir={RUNS_MOUNT}/${{name}}"]


def jobset(config: TrainConfig, *, overrides: list[str], image: str, pvc: str,
           max_restarts: int) -> dict:
    name, hosts, hardware = jobset_name(config), config.hardware.hosts, config.hardware
    resource = RESOURCE.get(hardware.platform.value)
    limits = {resource: hardware.devices_per_host} if resource and hardware.devices_per_host > 0 else {}
    container = {
        "name": "train", "image": image, "command": command(config, overrides),
        "ports": [{"containerPort": COORDINATOR_PORT, "name": "coordinator"}],
        "env": [{"name": "PYTHONUNBUFFERED", "value": "1"}],
        "volumeMounts": [{"name": "runs", "mountPath": RUNS_MOUNT}],
        **({"resources": {"limits": limits}} if limits else {}),
    }
    pod = {"restartPolicy": "Never",
           # SIGTERM -> every process saves the agreed step; give the write time to finish.
           "terminationGracePeriodSeconds": 300,
           "containers": [container],
           "volumes": [{"name": "runs", "persistentVolumeClaim": {"claimName": pvc}}]}
    job = {"parallelism": hosts, "completions": hosts, "completionMode": "Indexed",
           "backoffLimit": 0, "template": {"spec": pod}}
    return {
        "apiVersion": "jobset.x-k8s.io/v1alpha2", "kind": "JobSet",
        "metadata": {"name": name, "labels": {"app.kubernetes.io/name": "hydralearn"}},
        "spec": {
            # A headless service named after the JobSet gives every pod a stable DNS name.
            "network": {"enableDNSHostnames": True, "subdomain": name},
            "failurePolicy": {"maxRestarts": max_restarts},
            "successPolicy": {"operator": "All"},
            "replicatedJobs": [{"name": REPLICATED_JOB, "replicas": 1, "template": {"spec": job}}],
        },
    }


if __name__ == "__main__":
    main()
