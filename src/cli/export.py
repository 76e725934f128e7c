"""`hydralearn-export RUN_DIR[@STEP] --to hf OUT_DIR [--adapter-only]`: a run's checkpoint as a
Hugging Face directory (config.json + model.safetensors) that transformers loads; LoRA
adapters are merged into the weights, or with --adapter-only written in PEFT's format.
Every setting the architecture cannot express is refused by name before a weight is read
(interop/export_rules.py). The newest intact checkpoint unless @STEP is given.
"""

import argparse
import sys
from pathlib import Path

from hydralearn.cli.errors import exit_with
from hydralearn.config.run_dir import split_step
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
    from hydralearn.runtime import restore

    run_dir, step = split_step(run)
    checkpoint = restore.find(run_dir, step)
    config = checkpoint.config
    export_rules.check(config.model, adapter_only=adapter_only)
    names = ("adapter_config.json", "adapter_model.safetensors") if adapter_only else (
        "config.json", "model.safetensors")
    if existing := [n for n in names if (out / n).exists()]:
        raise ConfigError([f"{out}: {', '.join(existing)} exist already; choose an empty directory"])
    params = restore.params_on_one_device(checkpoint)
    from hydralearn.interop import hf

    if adapter_only:
        return hf.export_adapter(params, config, out)
    return hf.export(*restore.merged(params, config), out)


if __name__ == "__main__":
    main(sys.argv[1:])
