"""Text <-> token ids for a loaded model: the tokenizer a run trained with (its
data.tokenizer: bytes, a tokenizer.json or a SentencePiece model), or the `tokenizer.json` of a
Hugging Face directory (read with the `tokenizers` package)."""

import dataclasses
import json
from pathlib import Path
from typing import Any

from hydralearn.data import tokenizer as data_tokenizer
from hydralearn.data.tokenizer_config import TokenizerConfig, TokenizerKind
from hydralearn.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class Codec:
    """`encode` gives the ids a prompt starts with; `byte_count` how many bytes of text ids stand
    for (exact for bytes, through decoding otherwise); any of `eos_ids` ends a row's generation."""

    name: str
    eos_ids: tuple[int, ...]
    _tokenizer: Any = None  # a Hugging Face directory's tokenizers.Tokenizer; None: `trained`
    trained: data_tokenizer.Tokenizer = data_tokenizer.BYTE  # a run's own tokenizer

    @property
    def _bytes(self) -> bool:
        return self._tokenizer is None and self.trained.kind is TokenizerKind.byte

    def encode(self, text: str) -> list[int]:
        if self._tokenizer is None:  # a document as trained on starts with BOS, if any
            return [self.trained.bos_id] * (self.trained.bos_id is not None) + self.trained.encode(text)
        return self._tokenizer.encode(text).ids

    def decode(self, ids: list[int]) -> str:
        if self._tokenizer is None:
            return self.trained.decode(ids)
        return self._tokenizer.decode(list(ids), skip_special_tokens=True)

    def encode_bytes(self, data: bytes) -> list[int]:
        """A file's contents as ids: raw bytes for the byte tokenizer (any file), else its text."""
        if self._bytes:
            return list(data)
        text = data.decode("utf-8", errors="replace")
        if self._tokenizer is None:
            return self.trained.encode(text)
        return self._tokenizer.encode(text, add_special_tokens=False).ids

    def byte_count(self, ids) -> int:
        if self._bytes:
            return len(ids)
        return len(self.decode([int(i) for i in ids]).encode("utf-8"))


@dataclasses.dataclass(frozen=True)
class ChatCodec(Codec):
    """A prompt is a user's message, rendered with the run's chat template (data=chat) and an
    optional system turn; the template's end-of-turn token ends generation (for the byte
    tokenizer, which spells it as text, `stop` does)."""

    encoder: Any = None  # data.chat.ChatEncoder
    system: str | None = None
    stop: tuple[str, ...] = ()

    def encode(self, text: str) -> list[int]:
        system = [{"role": "system", "content": self.system}] if self.system else []
        return self.encoder.prompt(system + [{"role": "user", "content": text}])


def chat_codec(config, *, system: str | None = None) -> ChatCodec:
    """The chat codec of a run trained with data=chat (`config`: its TrainConfig)."""
    from hydralearn.data.chat import ChatEncoder
    from hydralearn.data.config import Source

    if config.data.source is not Source.chat:
        raise ConfigError([f"--chat renders prompts with the run's chat template; this run trained "
                           f"on data={config.data.source.value}, which has none"])
    tokenizer = data_tokenizer.load(config.data.tokenizer)
    encoder = ChatEncoder(config.data, tokenizer, where=getattr(config.data.tokenizer, "path", "byte"))
    end = encoder.end_of_turn
    end_id = tokenizer.token_id(end) if end else None
    return ChatCodec(name=f"chat ({config.data.template})", trained=tokenizer, encoder=encoder, system=system,
                     eos_ids=(end_id,) if end_id is not None else (tokenizer.eos_id,) * (tokenizer.kind is not TokenizerKind.byte),
                     stop=(end,) if end and end_id is None else ())


# Byte models generate up to the token budget, as transformers does for a model whose config
# names no eos_token_id (a byte model exported by hydralearn).
BYTES = Codec(name="bytes", eos_ids=())


def run_codec(config: TokenizerConfig) -> Codec:
    """The codec of a run's data.tokenizer."""
    return codec_of(data_tokenizer.load(config))


def codec_of(tokenizer: data_tokenizer.Tokenizer) -> Codec:
    """A run's tokenizer as a codec; its EOS ends generation."""
    if tokenizer.kind is TokenizerKind.byte:
        return BYTES
    return Codec(name=tokenizer.kind.value, eos_ids=(tokenizer.eos_id,), trained=tokenizer)


def hf_codec(directory: Path, *, vocab_size: int) -> Codec:
    """The directory's tokenizer.json, with eos from generation_config.json or config.json;
    the byte tokenizer for a 256-token model without one (e.g. exported by hydralearn)."""
    path = directory / "tokenizer.json"
    if not path.is_file():
        if vocab_size == data_tokenizer.BYTE.vocab_size:
            return BYTES
        raise ConfigError([f"{directory}: no tokenizer.json (needed to turn text into the "
                           f"model's {vocab_size} token ids)"])
    try:
        from tokenizers import Tokenizer
    except ImportError:
        raise ConfigError(["reading tokenizer.json needs the `tokenizers` package: "
                           "pip install tokenizers"]) from None
    return Codec(name=str(path), eos_ids=_eos_ids(directory), _tokenizer=Tokenizer.from_file(str(path)))


def _eos_ids(directory: Path) -> tuple[int, ...]:
    for name in ("generation_config.json", "config.json"):
        path = directory / name
        eos = json.loads(path.read_text()).get("eos_token_id") if path.is_file() else None
        if eos is not None:  # one id, or several (Llama 3 ends turns and texts differently)
            return tuple(int(i) for i in (eos if isinstance(eos, list) else [eos]))
    return ()
