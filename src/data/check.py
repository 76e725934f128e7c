"""What composition checks about the data without reading the corpus (numpy- and jax-free):
the tokenizer file, every glob, and the tokenizer recorded by token shards.

`expand` and `read_record` are also what the sources use when a run opens them."""

import glob
import json
import os
from pathlib import Path

from hydralearn.data.config import FILE_SOURCES, DataConfig, Source
from hydralearn.data.tokenizer import Tokenizer, load
from hydralearn.errors import ConfigError

SHARD_FORMAT = "hydralearn-tokens-v1"


def components(config: DataConfig) -> list[tuple[str, object, str]]:
    """(name, spec, config key) of every source the data option reads."""
    if config.source is Source.mixture:
        return [(name, part, f"data.mixture.{name}") for name, part in config.mixture.items()]
    return [(config.source.value, config, "data")]


def check(config: DataConfig) -> list[str]:
    """Every problem found without reading the corpus, one line each."""
    if config.source is Source.synthetic:
        return []
    try:
        tokenizer = load(config.tokenizer)
    except ConfigError as e:
        return e.errors
    problems = []
    for _, spec, key in components(config):
        if spec.source not in FILE_SOURCES:
            continue
        try:
            files = expand(spec.paths, key=f"{key}.paths")
        except ConfigError as e:
            problems += e.errors
            continue
        if spec.source is Source.tokens:
            problems += _shard_problems(files, tokenizer, key)
    return problems


def _shard_problems(files, tokenizer: Tokenizer, key: str) -> list[str]:
    for path, _ in files:
        if path.suffix != ".bin":
            continue
        try:
            problem = identity_problem(read_record(path), tokenizer)
        except ValueError as e:
            return [f"{key}: {e}"]
        if problem:
            return [f"{key}: {path}: {problem}"]
    return []


def expand(patterns: list[str], *, key: str) -> list[tuple[Path, str]]:
    """(file, name relative to its glob's fixed root) of every match, sorted, each checked
    readable and non-empty; directories that a `**` matches are passed over."""
    out, problems = {}, []
    for pattern in patterns:
        pattern = os.path.expanduser(pattern)
        matches = [m for m in sorted(glob.glob(pattern, recursive=True)) if not os.path.isdir(m)]
        if not matches:
            problems.append(f"{key}: {pattern!r} matches no file")
        root = _fixed_root(pattern)
        for match in matches:
            out.setdefault(Path(match), os.path.relpath(match, root))
    for path in out:
        problems += _unusable(path, key)
    if problems:
        raise ConfigError(problems)
    return list(out.items())


def _fixed_root(pattern: str) -> str:
    """The directory part of a glob before its first wildcard: names relative to it do not
    depend on the directory the run starts in."""
    parts = Path(pattern).parts
    wild = next((i for i, p in enumerate(parts) if set(p) & set("*?[")), len(parts))
    root = os.path.join(*parts[:wild]) if wild else "."
    return root if os.path.isdir(root) else os.path.dirname(root) or "."


def _unusable(path: Path, key: str) -> list[str]:
    try:
        size = path.stat().st_size
        with open(path, "rb"):
            pass
    except OSError as e:
        return [f"{key}: cannot read {path} ({e.strerror or e})"]
    return [f"{key}: {path} is empty"] if size == 0 else []


def read_record(bin_path: Path) -> dict:
    """A token shard's JSON record (data/shards.py); ValueError naming what is wrong."""
    path = bin_path.with_suffix(".json")
    if not path.is_file():
        raise ValueError(f"{bin_path} has no record {path.name} (write shards with hydralearn-tokenize)")
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise ValueError(f"{path}: cannot read the shard record ({e})") from None
    if not isinstance(record, dict) or record.get("format") != SHARD_FORMAT:
        raise ValueError(f"{path}: not a {SHARD_FORMAT} shard record")
    return record


def identity_problem(record: dict, tokenizer: Tokenizer) -> str | None:
    """Why a shard written with `record`'s tokenizer cannot train with `tokenizer`; None if it can."""
    written = record.get("tokenizer", {})
    if written == tokenizer.identity:
        return None
    return (f"tokenized with {written.get('kind')} tokenizer {str(written.get('sha256'))[:12]} "
            f"(vocab {written.get('vocab_size')}), but data/tokenizer is {tokenizer.kind.value} "
            f"{tokenizer.fingerprint[:12]} (vocab {tokenizer.vocab_size}); use the tokenizer the "
            "shards were written with, or tokenize again")
