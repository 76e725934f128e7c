"""Scale-out launchers without a cluster: the SLURM launcher's submission script (a real
`hydralearn-train -m` whose `sbatch` is a stand-in that keeps the script), and the
Kubernetes JobSet of `hydralearn-k8s` (checked structurally: no CRD schema ships in a
Python package)."""

import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

import yaml

from hydralearn.config import compose as compose_config

BIN = Path(sys.executable).parent
GPU_JOB = ["hardware=gpu_h100", "hardware.hosts=4", "name=big_run", "optim.lr=1e-3"]


def _fake_slurm(bin_dir: Path) -> None:
    bin_dir.mkdir()
    (bin_dir / "sbatch").write_text('#!/bin/sh\ncp "$1" "$SBATCH_COPY"\necho "Submitted batch job 4242"\n')
    (bin_dir / "srun").write_text("#!/bin/sh\nexit 0\n")  # submitit looks for it before submitting
    for tool in bin_dir.iterdir():
        tool.chmod(0o755)


def test_the_slurm_launcher_sizes_the_job_from_the_hardware_group(tmp_path):
    _fake_slurm(tmp_path / "bin")
    script = tmp_path / "job.sh"
    env = dict(os.environ, PATH=f"{tmp_path / 'bin'}:{os.environ['PATH']}", SBATCH_COPY=str(script))
    process = subprocess.Popen([str(BIN / "hydralearn-train"), "-m", "hydra/launcher=slurm",
                                *GPU_JOB], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 240
        while not script.exists() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert script.exists(), process.communicate(timeout=5)[0][-3000:]
    finally:  # submitit waits for the (never running) job's result: stop it
        process.kill()
        process.wait()
    lines = script.read_text().splitlines()
    for expected in ("#SBATCH --nodes=4", "#SBATCH --ntasks-per-node=1", "#SBATCH --gpus-per-node=8"):
        assert expected in lines
    assert any(line.startswith("srun ") for line in lines)


def test_a_cpu_job_asks_slurm_for_no_gpus():
    cfg = compose_config.compose(["hydra/launcher=slurm", "hardware.hosts=2"])
    assert cfg.hydra.launcher.nodes == 2 and cfg.hydra.launcher.gpus_per_node is None


def test_the_jobset_runs_one_pod_per_host_that_finds_the_coordinator(monkeypatch):
    out = subprocess.run([str(BIN / "hydralearn-k8s"), "--image", "registry/hl:1", *GPU_JOB],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    manifest = yaml.safe_load(out.stdout)
    assert (manifest["apiVersion"], manifest["kind"]) == ("jobset.x-k8s.io/v1alpha2", "JobSet")
    name = manifest["metadata"]["name"]
    assert name == "big-run"
    spec = manifest["spec"]
    assert spec["network"] == {"enableDNSHostnames": True, "subdomain": name}
    assert spec["failurePolicy"]["maxRestarts"] >= 1  # a failed pod restarts the whole set
    (workers,) = spec["replicatedJobs"]
    job = workers["template"]["spec"]
    assert job["parallelism"] == job["completions"] == 4 and job["completionMode"] == "Indexed"
    assert job["backoffLimit"] == 0
    (container,) = job["template"]["spec"]["containers"]
    assert container["image"] == "registry/hl:1"
    assert container["resources"]["limits"] == {"nvidia.com/gpu": 8}
    assert container["command"][0] == "hydralearn-train"
    assert {"name": "PYTHONUNBUFFERED", "value": "1"} in container["env"]
    # The pod's command composes, as pod 2 sees it (Kubernetes sets its completion index).
    monkeypatch.setenv("JOB_COMPLETION_INDEX", "2")
    config = compose_config.load(container["command"][1:])
    assert config.distributed.process_id == 2 and config.distributed.num_processes == 4
    assert config.distributed.coordinator == f"{name}-{workers['name']}-0-0.{name}:8476"
    assert config.hardware.hosts == 4 and config.optim.lr == 1e-3
    run_dir = [c for c in container["command"] if c.startswith("hydra.run.dir=")][0].split("=", 1)[1]
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    assert any(run_dir.startswith(m + "/") for m in mounts)  # runs on the shared volume


def test_hydralearn_k8s_refuses_a_bad_override_in_one_line():
    out = subprocess.run([str(BIN / "hydralearn-k8s"), "--image", "x", "hardware.hosts=zero"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [
        "hydralearn: error: hardware.hosts: expected int, got 'zero' (str)"]


HOSTILE_NAME = "a: b}{ #x"


def _k8s(monkeypatch, capsys, *args: str):
    """hydralearn-k8s in this process (its main, as the console script runs it)."""
    from hydralearn.cli import k8s

    monkeypatch.setattr(sys, "argv", ["hydralearn-k8s", *args])
    try:
        k8s.main()
        code = 0
    except SystemExit as e:
        code = e.code
    out = capsys.readouterr()
    return code, out.out, out.err


def test_the_pods_command_line_parses_back_into_the_same_overrides(monkeypatch, capsys):
    from hydra.core.override_parser.overrides_parser import OverridesParser

    overrides = [f"name='{HOSTILE_NAME}'", "hardware.hosts=2", "optim.lr=1e-3"]
    code, out, err = _k8s(monkeypatch, capsys, "--image", "registry.io:5000/team/hl:1.2", *overrides)
    assert code == 0, err
    manifest = yaml.safe_load(out)  # a YAML parser reads the manifest back
    (container,) = manifest["spec"]["replicatedJobs"][0]["template"]["spec"]["template"]["spec"]["containers"]
    command = container["command"]
    # The command as one shell line (kubectl describe, a copy into a terminal) splits back exactly.
    assert shlex.split(shlex.join(command)) == command
    assert command[0] == "hydralearn-train" and command[1:4] == overrides  # the user's, as given
    parsed = {o.key_or_group: o.value() for o in OverridesParser.create().parse_overrides(command[1:])}
    assert parsed["name"] == HOSTILE_NAME
    assert parsed["hydra.run.dir"] == "/runs/${name}"  # no user text in what k8s adds
    assert parsed["distributed.coordinator"] == "a-b-x-workers-0-0.a-b-x:8476"
    monkeypatch.setenv("JOB_COMPLETION_INDEX", "1")
    assert compose_config.load(command[1:]).name == HOSTILE_NAME


def test_hydralearn_k8s_refuses_an_unusable_image_name_or_claim(monkeypatch, capsys):
    for args, line in [
        (["--image", "hl:1\nrm -rf /"], "--image 'hl:1\\nrm -rf /' is not a container image reference"),
        (["--image", "Registry/Team/HL"], "--image 'Registry/Team/HL' is not a container image reference"),
        (["--image", "hl", "--pvc", "runs_pvc"], "--pvc 'runs_pvc' is not a Kubernetes object name"),
        (["--image", "hl", "name='a\nb'"], "name='a\\nb' contains a control character"),
    ]:
        code, out, err = _k8s(monkeypatch, capsys, *args)
        assert (code, out) == (2, ""), args
        (printed,) = err.splitlines()
        assert printed.startswith(f"hydralearn: error: {line}"), printed
