"""Schemas of the `data/tokenizer` group: byte (the default), hf, sentencepiece.

Jax-free, like every schema. A tokenizer is read from local files only; nothing is
downloaded. Its end-of-document (EOS) and beginning-of-document (BOS) tokens follow the
tokenizer itself (data/tokenizer.py).
"""

import dataclasses
import enum

from omegaconf import MISSING


class TokenizerKind(enum.Enum):
    byte = "byte"  # token id = UTF-8 byte value; EOS is byte 0 (NUL), which text never holds
    hf = "hf"  # a Hugging Face `tokenizers` tokenizer.json, or a directory holding one
    sentencepiece = "sentencepiece"  # a SentencePiece .model file


@dataclasses.dataclass(kw_only=True)
class TokenizerConfig:
    kind: TokenizerKind = TokenizerKind.byte


@dataclasses.dataclass(kw_only=True)
class HfTokenizerConfig(TokenizerConfig):
    kind: TokenizerKind = TokenizerKind.hf
    path: str = MISSING  # tokenizer.json, or a directory saved by transformers' save_pretrained
    # The end-of-document token; None: tokenizer_config.json's eos_token, else a well-known
    # name (</s>, <|endoftext|>, <|end_of_text|>, <eos>) among the tokenizer's special tokens.
    eos_token: str | None = None


@dataclasses.dataclass(kw_only=True)
class SentencePieceConfig(TokenizerConfig):
    kind: TokenizerKind = TokenizerKind.sentencepiece
    path: str = MISSING  # a .model file


# Option name -> schema, stored as data/tokenizer/base_<name> (config/store.py).
TOKENIZER_SCHEMAS: dict[str, type] = {
    "byte": TokenizerConfig, "hf": HfTokenizerConfig, "sentencepiece": SentencePieceConfig}
BY_KIND: dict[TokenizerKind, type] = {TokenizerKind(name): cls for name, cls in TOKENIZER_SCHEMAS.items()}
