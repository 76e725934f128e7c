"""Text <-> token ids for a loaded model: the byte tokenizer of hydralearn's runs, or the
`tokenizer.json` of a Hugging Face directory (read with the `tokenizers` package)."""

import dataclasses
import json
from pathlib import Path
from typing import Any

from hydralearn.errors import ConfigError
from hydralearn.data import tokenizer as byte_tokenizer


@dataclasses.dataclass(frozen=True)
class Codec:
    """`encode` gives the ids a prompt starts with; `byte_count` how many bytes of text ids stand
    for (exact for bytes, through decoding otherwise); any of `eos_ids` ends a row's generation."""

    name: str
    eos_ids: tuple[int, ...]
    _tokenizer: Any = None  # a tokenizers.Tokenizer; None for bytes

    def encode(self, text: str) -> list[int]:
        if self._tokenizer is None:
            return byte_tokenizer.encode(text).tolist()
        return self._tokenizer.encode(text).ids

    def decode(self, ids: list[int]) -> str:
        if self._tokenizer is None:
            return byte_tokenizer.decode(ids)
        return self._tokenizer.decode(list(ids), skip_special_tokens=True)

    def encode_bytes(self, data: bytes) -> list[int]:
        """A file's contents as ids: raw bytes for the byte tokenizer (any file), else its text."""
        if self._tokenizer is None:
            return list(data)
        return self._tokenizer.encode(data.decode("utf-8", errors="replace"), add_special_tokens=False).ids

    def byte_count(self, ids) -> int:
        if self._tokenizer is None:
            return len(ids)
        return len(self._tokenizer.decode([int(i) for i in ids], skip_special_tokens=False).encode("utf-8"))


BYTES = Codec(name="bytes", eos_ids=())


def hf_codec(directory: Path, *, vocab_size: int) -> Codec:
    """The directory's tokenizer.json, with eos from generation_config.json or config.json;
    the byte tokenizer for a 256-token model without one (e.g. exported by hydralearn)."""
    path = directory / "tokenizer.json"
    if not path.is_file():
        if vocab_size == byte_tokenizer.VOCAB_SIZE:
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
