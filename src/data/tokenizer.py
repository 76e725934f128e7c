"""Tokenizers from local files (data/tokenizer group): byte, Hugging Face `tokenizers`, SentencePiece.

Jax- and numpy-free (composition loads the tokenizer to check the vocabulary). Every
document becomes `[BOS] + encode(text) + [EOS]`, BOS only where the tokenizer has one
that it puts first (a SentencePiece model with a BOS piece, a tokenizer.json whose
post-processor prepends one, or transformers' `add_bos_token`). Text that happens to spell a
special token ("</s>") is encoded as plain text: only the loader places EOS and BOS.
"""

import dataclasses
import functools
import hashlib
import json
from pathlib import Path

from hydralearn.data.config import BYTE_VOCAB_SIZE
from hydralearn.data.tokenizer_config import TokenizerConfig, TokenizerKind
from hydralearn.errors import ConfigError

# End-of-text names of common tokenizers, tried in this order when none is configured.
_EOS_NAMES = ("</s>", "<|endoftext|>", "<|end_of_text|>", "<eos>", "<|im_end|>")


@dataclasses.dataclass(frozen=True)
class Tokenizer:
    kind: TokenizerKind
    vocab_size: int
    eos_id: int
    bos_id: int | None
    fingerprint: str  # sha256 of the tokenizer file ("byte" for the byte tokenizer)
    _impl: object = dataclasses.field(repr=False, compare=False)
    # tokenizer_config.json's chat_template (or chat_template.jinja beside it), and the
    # special-token names a chat template is rendered with (bos_token, eos_token, ...)
    chat_template: str | None = dataclasses.field(default=None, repr=False, compare=False)
    special_names: dict = dataclasses.field(default_factory=dict, repr=False, compare=False)

    @property
    def identity(self) -> dict:
        """What a token shard records, and what must match to train from it."""
        return {"kind": self.kind.value, "sha256": self.fingerprint, "vocab_size": self.vocab_size}

    def encode(self, text: str) -> list[int]:
        """Token ids of `text`, no special tokens."""
        return self.encode_batch([text])[0]

    def encode_batch(self, texts: list[str], *, threads: int = 1) -> list[list[int]]:
        return self._impl.encode_batch(texts, threads)

    def document(self, text: str) -> list[int]:
        """A document as trained on: [BOS] + tokens + [EOS]."""
        return self.wrap(self.encode(text))

    def wrap(self, ids: list[int]) -> list[int]:
        return ([self.bos_id] if self.bos_id is not None else []) + ids + [self.eos_id]

    def decode(self, ids) -> str:
        return self._impl.decode([int(i) for i in ids if 0 <= int(i) < self.vocab_size])

    def encode_rendered(self, text: str) -> tuple[list[int], list[tuple[int, int]]]:
        """A rendered chat: (token ids, each token's [start, end) characters in `text`). Unlike
        `encode`, the special tokens it spells are special tokens, as transformers'
        apply_chat_template has them."""
        return self._impl.encode_rendered(text)

    def token_id(self, name: str) -> int | None:
        """The id of the single token `name`, None if the tokenizer has no such token."""
        return self._impl.token_id(name)


class _Bytes:
    def encode_batch(self, texts, threads):
        return [list(t.encode("utf-8")) for t in texts]

    def decode(self, ids):
        return bytes(ids).decode("utf-8", errors="replace")

    def encode_rendered(self, text):
        ids, offsets = [], []
        for i, char in enumerate(text):
            raw = char.encode("utf-8")
            ids += raw
            offsets += [(i, i + 1)] * len(raw)
        return ids, offsets

    def token_id(self, name):
        return None


class _HuggingFace:
    def __init__(self, tokenizer, path: Path):
        self.tokenizer, self.path = tokenizer, path

    @functools.cached_property
    def chat(self):
        """A second instance that reads special tokens in text (`encode_special_tokens` is a
        setting of the instance, shared by every thread using it)."""
        from tokenizers import Tokenizer as HfTokenizer

        return HfTokenizer.from_file(str(self.path))

    def encode_rendered(self, text):
        encoding = self.chat.encode(text, add_special_tokens=False)
        return encoding.ids, encoding.offsets

    def token_id(self, name):
        return self.tokenizer.token_to_id(name)

    def encode_batch(self, texts, threads):  # the Rust library uses every core by itself
        return [e.ids for e in self.tokenizer.encode_batch(texts, add_special_tokens=False)]

    def decode(self, ids):
        return self.tokenizer.decode(ids, skip_special_tokens=False)


class _SentencePiece:
    def __init__(self, processor):
        self.processor = processor

    def encode_batch(self, texts, threads):
        return self.processor.encode(texts, num_threads=max(threads, 1))

    def decode(self, ids):
        return self.processor.decode(ids)

    def encode_rendered(self, text):
        raise ValueError("chat data takes a byte or hf tokenizer, not sentencepiece")

    def token_id(self, name):
        piece = self.processor.piece_to_id(name)
        return piece if self.processor.id_to_piece(piece) == name else None


BYTE = Tokenizer(kind=TokenizerKind.byte, vocab_size=BYTE_VOCAB_SIZE, eos_id=0, bos_id=None,
                 fingerprint="byte", _impl=_Bytes())


def load(config: TokenizerConfig) -> Tokenizer:
    """The configured tokenizer; ConfigError (one line) if its file is missing or invalid."""
    if config.kind is TokenizerKind.byte:
        return BYTE
    path = Path(config.path).expanduser()
    if config.kind is TokenizerKind.hf and path.is_dir():
        path = path / "tokenizer.json"
    if not path.is_file():
        raise ConfigError([f"data.tokenizer.path={config.path}: no such file"
                           + (" (a directory must hold tokenizer.json)" if path.name == "tokenizer.json" else "")])
    stat = path.stat()
    return _load(config.kind, str(path.resolve()), getattr(config, "eos_token", None),
                 stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=8)
def _load(kind: TokenizerKind, path: str, eos_token: str | None, _mtime: int, _size: int) -> Tokenizer:
    digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    if kind is TokenizerKind.hf:
        return _load_hf(Path(path), eos_token, digest)
    return _load_sentencepiece(Path(path), digest)


def _load_hf(path: Path, eos_token: str | None, digest: str) -> Tokenizer:
    from tokenizers import Tokenizer as HfTokenizer

    try:
        tokenizer = HfTokenizer.from_file(str(path))
    except Exception as e:  # the library raises bare Exceptions for malformed files
        raise ConfigError([f"data.tokenizer.path={path}: not a Hugging Face tokenizer.json "
                           f"({str(e).splitlines()[0][:120]})"]) from None
    tokenizer.encode_special_tokens = True  # "</s>" in a document is text, not EOS
    saved = _transformers_config(path.parent)
    eos_name = eos_token or _token_name(saved.get("eos_token"))
    names = [eos_name] if eos_name else [n for n in _EOS_NAMES if tokenizer.token_to_id(n) is not None][:1]
    eos = tokenizer.token_to_id(names[0]) if names else None
    if eos is None:
        raise ConfigError([f"data.tokenizer.path={path}: no end-of-text token "
                           f"{'named ' + repr(eos_name) if eos_name else 'found'}; name it with "
                           "data.tokenizer.eos_token=<token>"])
    return Tokenizer(kind=TokenizerKind.hf, vocab_size=tokenizer.get_vocab_size(with_added_tokens=True),
                     eos_id=eos, bos_id=_hf_bos(tokenizer, saved), fingerprint=digest,
                     _impl=_HuggingFace(tokenizer, path), chat_template=_chat_template(path.parent, saved),
                     special_names={k: _token_name(v) for k, v in saved.items()
                                    if k.endswith("_token") and _token_name(v)})


def _transformers_config(directory: Path) -> dict:
    """tokenizer_config.json written by transformers beside tokenizer.json, if any."""
    path = directory / "tokenizer_config.json"
    try:
        return json.loads(path.read_text()) if path.is_file() else {}
    except (OSError, ValueError):
        return {}


def _chat_template(directory: Path, saved: dict) -> str | None:
    """chat_template.jinja (what newer transformers save), else tokenizer_config.json's."""
    path = directory / "chat_template.jinja"
    if path.is_file():
        return path.read_text(encoding="utf-8")
    value = saved.get("chat_template")
    if isinstance(value, list):  # named templates: the default one
        value = {t.get("name"): t.get("template") for t in value if isinstance(t, dict)}.get("default")
    return value if isinstance(value, str) else None


def _token_name(value) -> str | None:
    return value.get("content") if isinstance(value, dict) else value


def _hf_bos(tokenizer, saved: dict) -> int | None:
    """The id the tokenizer puts first: transformers' add_bos_token, else its post-processor's."""
    if "add_bos_token" in saved:
        name = _token_name(saved.get("bos_token"))
        return tokenizer.token_to_id(name) if saved["add_bos_token"] and name else None
    plain = tokenizer.encode("a", add_special_tokens=False).ids
    special = tokenizer.encode("a", add_special_tokens=True).ids
    return special[0] if len(special) > len(plain) and special[1:1 + len(plain)] == plain else None


def _load_sentencepiece(path: Path, digest: str) -> Tokenizer:
    import sentencepiece

    try:
        processor = sentencepiece.SentencePieceProcessor(model_file=str(path))
    except Exception as e:  # noqa: BLE001 - the library raises RuntimeError/OSError alike
        raise ConfigError([f"data.tokenizer.path={path}: not a SentencePiece model "
                           f"({str(e).splitlines()[0][:120]})"]) from None
    if processor.eos_id() < 0:
        raise ConfigError([f"data.tokenizer.path={path}: the SentencePiece model has no EOS "
                           "piece (train it with eos_id >= 0)"])
    bos = processor.bos_id()
    return Tokenizer(kind=TokenizerKind.sentencepiece, vocab_size=processor.get_piece_size(),
                     eos_id=processor.eos_id(), bos_id=bos if bos >= 0 else None,
                     fingerprint=digest, _impl=_SentencePiece(processor))


def vocab_size(config) -> int:
    """The vocabulary the data's tokens come from (`config`: a DataConfig)."""
    return load(config.tokenizer).vocab_size


def padded_vocab_size(config, multiple: int = 128) -> int:
    """model.vocab_size=auto: the tokenizer's size rounded up to a multiple of 128 (lanes)."""
    return -(-vocab_size(config) // multiple) * multiple
