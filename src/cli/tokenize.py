"""`hydralearn-tokenize`: a data option's documents into token shards, for `data=tokens`.

    hydralearn-tokenize data=jsonl data.paths='[corpus/*.jsonl]' data/tokenizer=hf \\
        data.tokenizer.path=tok/ --out shards/
    hydralearn-train data=tokens data.paths='[shards/*.bin]' data/tokenizer=hf data.tokenizer.path=tok/

Takes the same data overrides as hydralearn-train, uses every core, shows a progress bar and
ends with the tokens/s it reached. Exit 2, nothing written, on any bad input.
"""

import argparse
import sys

from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from hydralearn.cli import hydra_args
from hydralearn.cli.errors import exit_with
from hydralearn.errors import ConfigError


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="hydralearn-tokenize", description=(
        "Tokenize a data option's documents into token shards (train from them with data=tokens)."))
    parser.add_argument("overrides", nargs="*", help="data overrides, as for hydralearn-train")
    parser.add_argument("--out", required=True, help="directory for the shards (no shards in it yet)")
    parser.add_argument("--workers", type=int, default=None, help="processes (default: every core)")
    parser.add_argument("--shard-tokens", type=int, default=1 << 27,
                        help="tokens per shard, about (default 134217728)")
    hydra_args.add_location_flags(parser)
    return parser.parse_args(argv)


def data_config(overrides: list[str], where):
    """The composed config's `data` node, validated on its own: the model is not involved."""
    from hydralearn.config import compose as compose_config
    from hydralearn.config.validate import describe
    from hydralearn.data.check import check

    cfg = compose_config.compose(overrides, where)
    try:
        data = OmegaConf.to_object(cfg.data)
    except OmegaConfBaseException as e:
        raise ConfigError([describe(e)]) from None
    errors = data.errors() or check(data)
    if errors:
        raise ConfigError(errors)
    return data


def main(argv: list[str] | None = None) -> None:
    args = parse(sys.argv[1:] if argv is None else argv)
    try:
        data = data_config(args.overrides, hydra_args.location(args))
        from hydralearn.data.tokenize import open_for_tokenizing, tokenize

        inputs = open_for_tokenizing(data, args.out)
    except ConfigError as e:
        exit_with(e)
    from tqdm import tqdm

    with tqdm(total=sum(len(s.documents) for s in inputs.splits), unit="doc", desc="tokenizing") as bar:
        result = tokenize(inputs, args.out, workers=args.workers, shard_tokens=args.shard_tokens,
                          progress=lambda done: bar.update(done - bar.n))
    print(f"wrote {result.tokens:,} tokens of {result.documents:,} documents ({result.bytes:,} bytes "
          f"of text) into {result.shards} shards in {args.out}: {result.tokens_per_s:,.0f} tokens/s "
          f"in {result.seconds:.1f}s")


if __name__ == "__main__":
    main()
