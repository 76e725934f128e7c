"""Schema of conf/data: where the tokens come from and how batches are cut."""

import dataclasses
import enum



BYTE_VOCAB_SIZE = 256  # the byte-level tokenizer of both sources (data/tokenizer.py)


class Source(enum.Enum):
    stdlib = "stdlib"  # the Python standard library's .py sources on this machine
    synthetic = "synthetic"  # a fixed random Markov chain over bytes: fast, learnable


@dataclasses.dataclass(kw_only=True)
class DataConfig:
    source: Source = Source.stdlib
    seq_len: int = 256
    batch_size: int = 16  # the global batch, over every device and process
    max_bytes: int = 32_000_000
    heldout_percent: int = 5  # share of documents (files) held out for evaluation
    seed: int = 0

    @property
    def vocab_size(self) -> int:
        return BYTE_VOCAB_SIZE

    def errors(self) -> list[str]:
        out = [f"data.{n}={getattr(self, n)} must be positive"
               for n in ("seq_len", "batch_size", "max_bytes") if getattr(self, n) <= 0]
        if not 0 < self.heldout_percent < 100:
            out.append(f"data.heldout_percent={self.heldout_percent} must be between 1 and 99")
        return out
