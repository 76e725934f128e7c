"""Schemas of the `data` group: where the documents come from, how they become batches.

One schema per option (`data=jsonl` is JsonlData), all sharing DataConfig's batching fields;
the `source` field names the option, so a saved config is typed again from it (`schema_for`).
Jax-free: composing, printing and validating a config never imports jax or numpy.
"""

import dataclasses
import enum
from typing import Any

from omegaconf import MISSING

from hydralearn.data.tokenizer_config import BY_KIND, TokenizerConfig, TokenizerKind

BYTE_VOCAB_SIZE = 256  # the byte tokenizer (data/tokenizer.py)


class Source(enum.Enum):
    stdlib = "stdlib"  # the Python standard library's .py files on this machine, one document each
    synthetic = "synthetic"  # a fixed random Markov chain over bytes: fast, learnable, for tests
    text = "text"  # text files, one document per file
    jsonl = "jsonl"  # JSON lines (.jsonl, .jsonl.gz, .jsonl.zst), one document per line
    parquet = "parquet"  # Parquet files, one document per row
    hf_disk = "hf_disk"  # a Hugging Face `datasets` dataset saved with save_to_disk
    tokens = "tokens"  # token shards written by hydralearn-tokenize, memory-mapped
    mixture = "mixture"  # named components, each one of the document sources, with weights
    chat = "chat"  # conversations or prompt/completion pairs (jsonl, parquet, hf_disk), templated


DOCUMENT_SOURCES = (Source.stdlib, Source.text, Source.jsonl, Source.parquet, Source.hf_disk,
                    Source.tokens)
FILE_SOURCES = (Source.text, Source.jsonl, Source.parquet, Source.tokens)


class Packing(enum.Enum):
    concat = "concat"  # documents joined with EOS, cut into windows of seq_len + 1 tokens
    segments = "segments"  # documents packed whole into rows; attention stays in each document


class ChatFormat(enum.Enum):
    messages = "messages"  # [{"role": "system"|"user"|"assistant", "content": str}, ...]
    prompt_completion = "prompt_completion"  # {"prompt": str, "completion": str}: one exchange


class LossMask(enum.Enum):
    assistant = "assistant"  # every assistant turn's tokens (and its end-of-turn token)
    last_turn = "last_turn"  # the last assistant turn's tokens only
    all = "all"  # every token of the rendered conversation


class Overlong(enum.Enum):
    """A conversation of more than seq_len + 1 tokens (one row's inputs and targets)."""
    truncate_left = "truncate_left"  # drop its oldest turns (a system turn stays) until it fits
    drop = "drop"  # leave it out; the count is logged when the data is opened


class BadRecords(enum.Enum):
    error = "error"  # stop at the first bad record, naming its file and line
    skip = "skip"  # skip bad records with a warning; their count is in the metrics


@dataclasses.dataclass(kw_only=True)
class DataConfig:
    """What every option shares: batching, packing, tokenizer, held-out split, loader threads."""

    source: Source = MISSING
    seq_len: int = 256
    batch_size: int = 16  # the global batch, over every device and process
    seed: int = 0  # document order (reshuffled each epoch) and the synthetic chain
    # Share of documents held out for evaluation, split by a hash of each document's place
    # (file and record), so the split never depends on the order files are listed in.
    heldout_percent: int = 5
    eval_paths: list[str] = dataclasses.field(default_factory=list)  # instead of the split
    packing: Packing = Packing.concat
    bad_records: BadRecords = BadRecords.error
    tokenizer: TokenizerConfig = dataclasses.field(default_factory=TokenizerConfig)
    read_threads: int = 2  # Grain threads reading and tokenizing documents
    prefetch_batches: int = 4  # batches prepared ahead, in a background thread

    def errors(self) -> list[str]:
        out = [f"data.{n}={getattr(self, n)} must be positive"
               for n in ("seq_len", "batch_size", "prefetch_batches") if getattr(self, n) <= 0]
        if self.read_threads < 0:
            out.append(f"data.read_threads={self.read_threads} must be 0 or more")
        if not 0 <= self.heldout_percent < 100:
            out.append(f"data.heldout_percent={self.heldout_percent} must be between 0 and 99")
        if self.heldout_percent == 0 and not self.eval_paths:
            out.append("data.heldout_percent=0 leaves nothing to evaluate on: set data.eval_paths")
        if self.eval_paths and self.source not in FILE_SOURCES:
            out.append(f"data.eval_paths is for file sources ({_names(FILE_SOURCES)}), not "
                       f"data={self.source.value}; use data.heldout_percent")
        return out + self.source_errors()

    def source_errors(self) -> list[str]:
        return []


@dataclasses.dataclass(kw_only=True)
class StdlibData(DataConfig):
    source: Source = Source.stdlib
    max_bytes: int = 32_000_000  # files are taken in sorted order until this many bytes

    def source_errors(self) -> list[str]:
        return [] if self.max_bytes > 0 else [f"data.max_bytes={self.max_bytes} must be positive"]


@dataclasses.dataclass(kw_only=True)
class SyntheticData(DataConfig):
    """Random windows of one stream: a pure function of (seed, step), no documents."""

    source: Source = Source.synthetic
    num_tokens: int = 200_000  # train tokens; a tenth more are held out

    def source_errors(self) -> list[str]:
        out = [] if self.num_tokens > self.seq_len + 1 else [
            f"data.num_tokens={self.num_tokens} must exceed data.seq_len + 1"]
        if self.packing is not Packing.concat:
            out.append("data.packing=segments needs documents; data=synthetic is one stream")
        if self.tokenizer.kind is not TokenizerKind.byte:
            out.append("data=synthetic makes byte tokens: it takes data/tokenizer=byte only")
        return out


@dataclasses.dataclass(kw_only=True)
class FilesData(DataConfig):
    paths: list[str] = MISSING  # glob patterns; `**` matches any depth of directories

    def source_errors(self) -> list[str]:
        return [] if self.paths else [f"data.paths is empty: give data={self.source.value} "
                                      "at least one file or glob"]


@dataclasses.dataclass(kw_only=True)
class TextData(FilesData):
    source: Source = Source.text


@dataclasses.dataclass(kw_only=True)
class JsonlData(FilesData):
    source: Source = Source.jsonl
    text_key: str = "text"


@dataclasses.dataclass(kw_only=True)
class ParquetData(FilesData):
    source: Source = Source.parquet
    text_key: str = "text"


@dataclasses.dataclass(kw_only=True)
class TokensData(FilesData):
    """Shards of hydralearn-tokenize (`*.bin`, each with its `.json` record); their recorded
    tokenizer must be the configured one."""

    source: Source = Source.tokens


@dataclasses.dataclass(kw_only=True)
class HfDiskData(DataConfig):
    source: Source = Source.hf_disk
    path: str = MISSING  # the directory given to save_to_disk
    text_key: str = "text"
    split: str | None = None  # for a DatasetDict: which split (None: it must hold just one)


@dataclasses.dataclass(kw_only=True)
class Component:
    """One source of a mixture: `source` and that source's own fields, plus a weight."""

    source: Source = MISSING
    weight: float = 1.0  # relative share of the documents drawn from this component
    paths: list[str] = dataclasses.field(default_factory=list)  # text, jsonl, parquet, tokens
    path: str | None = None  # hf_disk
    text_key: str = "text"  # jsonl, parquet, hf_disk
    split: str | None = None  # hf_disk
    max_bytes: int = 32_000_000  # stdlib


@dataclasses.dataclass(kw_only=True)
class MixtureData(DataConfig):
    """Documents drawn from named components by weight (`data.mixture.code.weight=0.3`);
    each component is split into train and held-out documents on its own."""

    source: Source = Source.mixture
    mixture: dict[str, Component] = dataclasses.field(default_factory=dict)

    def source_errors(self) -> list[str]:
        if not self.mixture:
            return ["data.mixture has no components: add data.mixture.<name>.source=... "
                    "(or write your own data option, see docs/data.md)"]
        out = []
        for name, part in self.mixture.items():
            key = f"data.mixture.{name}"
            if part.source not in DOCUMENT_SOURCES:
                out.append(f"{key}.source={part.source.value} cannot be mixed; choose one of "
                           f"{_names(DOCUMENT_SOURCES)}")
            if part.weight <= 0:
                out.append(f"{key}.weight={part.weight} must be positive")
            if part.source in FILE_SOURCES and not part.paths:
                out.append(f"{key}.paths is empty: give {part.source.value} files or globs")
            if part.source is Source.hf_disk and not part.path:
                out.append(f"{key}.path is required for source hf_disk")
        return out


@dataclasses.dataclass(kw_only=True)
class ChatData(DataConfig):
    """Chat or instruction data for objective=sft: each record a conversation (`messages`) or a
    prompt/completion pair, from JSON lines or Parquet (`paths`) or a saved `datasets` dataset
    (`path`). A conversation is rendered with the chat template, and its targets are the tokens
    `loss_mask` names; the rest of the row is context (docs/posttrain.md)."""

    source: Source = Source.chat
    packing: Packing = Packing.segments  # each conversation in its own segment of a row
    paths: list[str] = dataclasses.field(default_factory=list)  # .jsonl[.gz|.zst] or .parquet
    path: str | None = None  # instead of paths: a directory given to datasets' save_to_disk
    split: str | None = None  # of that dataset (None: it must hold just one)
    format: ChatFormat = ChatFormat.messages
    messages_key: str = "messages"
    prompt_key: str = "prompt"
    completion_key: str = "completion"
    # "tokenizer": the tokenizer's own chat_template; or chatml, llama3; or a Jinja file.
    # Prompt/completion pairs are joined as they are: no template.
    template: str = "tokenizer"
    loss_mask: LossMask = LossMask.assistant  # prompt/completion pairs: the completion always
    overlong: Overlong = Overlong.truncate_left

    def source_errors(self) -> list[str]:
        out = []
        if bool(self.paths) == bool(self.path):
            out.append("data=chat reads data.paths (JSON lines or Parquet files) or data.path "
                       "(a saved datasets directory): give exactly one")
        if self.tokenizer.kind is TokenizerKind.sentencepiece:
            out.append("data=chat takes data/tokenizer=hf or byte: chat templates are rendered to "
                       "text and tokenized with character offsets, which sentencepiece lacks")
        return out


# Option name -> schema, stored as data/base_<name> (config/store.py).
DATA_SCHEMAS: dict[str, type] = {
    "stdlib": StdlibData, "synthetic": SyntheticData, "text": TextData, "jsonl": JsonlData,
    "parquet": ParquetData, "hf_disk": HfDiskData, "tokens": TokensData, "mixture": MixtureData,
    "chat": ChatData}


def schema_for(node: Any) -> tuple[type, type]:
    """(data schema, tokenizer schema) named by a plain data node's `source` and
    `tokenizer.kind`: how a saved config is typed again (compose/config.from_container)."""
    def value(v):
        return v.value if isinstance(v, enum.Enum) else v

    source = value(node.get("source")) if isinstance(node, dict) else None
    kind = value((node.get("tokenizer") or {}).get("kind", "byte")) if isinstance(node, dict) else "byte"
    return (DATA_SCHEMAS.get(str(source), DataConfig),
            BY_KIND.get(TokenizerKind(kind) if kind in TokenizerKind.__members__ else None,
                        TokenizerConfig))


def _names(sources) -> str:
    return ", ".join(s.value for s in sources)
