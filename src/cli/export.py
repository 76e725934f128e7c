"""`hydralearn-export RUN_DIR[@STEP] --to hf OUT_DIR [--adapter-only]`: a run's checkpoint as a
Hugging Face directory (config.json + model.safetensors) that transformers loads; LoRA
adapters are merged into the weights, or with --adapter-only written in PEFT's format.
Every setting the architecture cannot express is refused by name before a weight is read
(interop/export_rules.py). The newest intact checkpoint unless @STEP is given.
"""

import argparse
import dataclasses
import sys
from pathlib import Path

from hydralearn.cli.errors import exit_with
from hydralearn.config.compose import from_container
from hydralearn.config.files import read_mapping
from hydralearn.config.schema import MeshConfig, MeshMode
from hydralearn.errors import ConfigError
from hydralearn.interop import export_rules


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="hydralearn-export", description=__doc__.split("\n")[0])
    parser.add_argument("run", help="a run directory, optionally @STEP (e.g. runs/my_run@200)")
    parser.add_argument("--to", choices=["hf"], required=True, help="target format")
    parser.add_argument("out", help="output directory (created; existing files are not overwritten)")
    parser.add_argument("--adapter-only", action="store_true",
                        help="write only the LoRA adapter, in PEFT's format")
    args = parser.parse_args(argv)
    try:
        print(export(args.run, Path(args.out), adapter_only=args.adapter_only))
    except ConfigError as e:
        exit_with(e)


def export(run: str, out: Path, *, adapter_only: bool = False) -> Path:
    run_dir, _, step = run.partition("@")
    run_dir = Path(run_dir)
    config = run_config(run_dir)
    export_rules.check(config.model, adapter_only=adapter_only)
    names = ("adapter_config.json", "adapter_model.safetensors") if adapter_only else (
        "config.json", "model.safetensors")
    if existing := [n for n in names if (out / n).exists()]:
        raise ConfigError([f"{out}: {', '.join(existing)} exist already; choose an empty directory"])
    params = restore_params(run_dir, config, int(step) if step else None)
    from hydralearn.interop import hf

    if adapter_only:
        return hf.export_adapter(params, config, out)
    return hf.export(*merged(params, config), out)


def run_config(run_dir: Path):
    """The resolved config the run's newest checkpoint was written with."""
    from hydralearn.runtime.checkpoint import saved_config

    saved = saved_config(run_dir / "checkpoints")
    if saved is None and (run_dir / "resolved_config.yaml").is_file():
        saved = read_mapping(run_dir / "resolved_config.yaml")
    if saved is None:
        raise ConfigError([f"{run_dir}: no checkpoint with its config here (expected a run directory "
                           "of hydralearn-train)"])
    return from_container(saved)


def run_on_one_device(config):
    """The whole model read on one device: the checkpoint is resharded onto it."""
    return dataclasses.replace(config, mesh=MeshConfig(mode=MeshMode.fixed,
                                                       axes={k: 1 for k in config.mesh.axes}))


def restore_params(run_dir: Path, config, step: int | None):
    import jax

    from hydralearn.compose.build import build
    from hydralearn.runtime.checkpoint import Checkpointer, abstract_state, committed_steps

    steps = committed_steps(run_dir / "checkpoints")
    if step is not None and step not in steps:
        raise ConfigError([f"{run_dir}@{step}: no such checkpoint (steps: {steps or 'none'})"])
    program = build(run_on_one_device(config), devices=jax.devices()[:1])
    checkpointer = Checkpointer(run_dir / "checkpoints", config.checkpoint)
    try:
        step = step if step is not None else checkpointer.newest_intact()
        if step is None:
            raise ConfigError([f"{run_dir}: no intact checkpoint to export"])
        state = checkpointer.restore(step, abstract_state(program.init_state, program.state_shardings)).state
    finally:
        checkpointer.close()
    return state.params


def merged(params, config):
    """(parameters, config) of the model without adapter, adapters folded into the weights."""
    from flax import nnx

    from hydralearn.compose.build import abstract_params, make_adapter, plain_config

    graphdef, _ = abstract_params(config)
    model = make_adapter(config).merged(nnx.merge(graphdef, params))
    return nnx.state(model, nnx.Param), plain_config(config)


if __name__ == "__main__":
    main(sys.argv[1:])
