"""`hydralearn-eval`: loss per token, bits per byte and perplexity of a trained model.

    hydralearn-eval runs/my_run                     # the run's own held-out data, as in training
    hydralearn-eval runs/my_run@500 data=synthetic data.seq_len=128 --batches 32
    hydralearn-eval runs/my_run --perplexity-of notes.txt
Results print as JSON and are added to eval.json in the checkpoint's directory.
"""

import dataclasses
import json
import sys
from pathlib import Path

from hydralearn.cli.args import ArgumentParser
from hydralearn.cli.errors import exit_with
from hydralearn.cli.target import load
from hydralearn.compose import cache
from hydralearn.errors import ConfigError


def parse(argv: list[str]):
    parser = ArgumentParser(prog="hydralearn-eval", description="Evaluate a run's checkpoint "
                            "(<run dir>[@step]) or a Hugging Face directory.")
    parser.add_argument("target", help="run directory, optionally @step, or a Hugging Face directory")
    parser.add_argument("overrides", nargs="*", help="data overrides: data=<option>, data.<key>=<value>")
    parser.add_argument("--batches", type=int, help="held-out batches to evaluate (default: "
                        "trainer.eval_batches, the training-time eval's windows)")
    parser.add_argument("--perplexity-of", type=Path, metavar="FILE",
                        help="evaluate on this file (in windows of data.seq_len) instead")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse(sys.argv[1:] if argv is None else argv)
    try:
        if args.batches is not None and args.batches <= 0:
            raise ConfigError([f"--batches={args.batches} must be positive"])
        if args.perplexity_of is not None and not args.perplexity_of.is_file():
            raise ConfigError([f"--perplexity-of {args.perplexity_of}: no such file"])
        _evaluate(args)
    except ConfigError as e:
        exit_with(e)


def _evaluate(args) -> None:
    model = load(args.target)  # a missing directory is reported before jax is imported
    cache.use(model.config.trainer.compile_cache)
    from hydralearn.runtime import evaluate
    from hydralearn.runtime.load import with_data

    model = with_data(model, args.overrides)
    if args.perplexity_of is not None:
        try:
            result = evaluate.on_file(model, args.perplexity_of)
        except ValueError as e:
            raise ConfigError([str(e)]) from None
    else:
        result = evaluate.on_heldout(model, batches=args.batches or model.config.trainer.eval_batches)
    path = evaluate.record(model, result)
    print(json.dumps({**dataclasses.asdict(result), "step": model.step}, indent=2))
    print(f"added to {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
