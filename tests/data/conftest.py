"""Corpora, tokenizers and files made inside the tests (nothing downloaded), shared by the
data tests: generated documents with unique first words, a byte-level BPE trained with
`tokenizers`, a SentencePiece model trained with `sentencepiece`, and the same documents as
text files, JSON lines (plain, .gz, .zst), Parquet and a `datasets` dataset on disk."""

import gzip
import json
import random
from pathlib import Path

import pytest

WORDS = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "theta", "kappa", "lambda",
         "déjà", "naïve", "日本", "über", "x=1;", "(y)", "\t", "\n"]
NUM_DOCS = 60


def make_documents(count: int = NUM_DOCS, seed: int = 0) -> list[str]:
    """Distinct documents of varied length (doc i starts with 'doc i:')."""
    rng = random.Random(seed)
    return [f"doc {i}: " + " ".join(rng.choices(WORDS, k=rng.randint(0, 40))) for i in range(count)]


@pytest.fixture(scope="session")
def documents() -> list[str]:
    return make_documents()


@pytest.fixture(scope="session")
def corpus(tmp_path_factory, documents) -> dict[str, Path]:
    """The documents in every file format (two files each where the format has records)."""
    root = tmp_path_factory.mktemp("corpus")
    half = len(documents) // 2
    (root / "text" / "sub").mkdir(parents=True)
    for i, doc in enumerate(documents):
        (root / "text" / ("sub" if i % 2 else "") / f"{i:03d}.txt").write_text(doc, encoding="utf-8")
    jsonl = [("\n".join(json.dumps({"id": i, "text": d}) for i, d in enumerate(part, start)) + "\n")
             for start, part in ((0, documents[:half]), (half, documents[half:]))]
    (root / "jsonl").mkdir()
    for n, lines in enumerate(jsonl):
        (root / "jsonl" / f"part{n}.jsonl").write_text(lines, encoding="utf-8")
    (root / "gz").mkdir()
    for n, lines in enumerate(jsonl):
        (root / "gz" / f"part{n}.jsonl.gz").write_bytes(gzip.compress(lines.encode()))
    import zstandard
    (root / "zst").mkdir()
    for n, lines in enumerate(jsonl):
        (root / "zst" / f"part{n}.jsonl.zst").write_bytes(zstandard.ZstdCompressor().compress(lines.encode()))
    import pyarrow as pa
    import pyarrow.parquet as pq
    (root / "parquet").mkdir()
    for n, part in enumerate((documents[:half], documents[half:])):
        pq.write_table(pa.table({"body": part, "n": list(range(len(part)))}), root / "parquet" / f"p{n}.parquet",
                       row_group_size=7)
    import datasets
    datasets.Dataset.from_dict({"text": documents}).save_to_disk(str(root / "hf"))
    return {"root": root, "text": root / "text", "jsonl": root / "jsonl", "gz": root / "gz",
            "zst": root / "zst", "parquet": root / "parquet", "hf": root / "hf"}


@pytest.fixture(scope="session")
def bpe(tmp_path_factory, documents) -> Path:
    """A byte-level BPE (vocab 300) with <|endoftext|>, saved as tokenizer.json."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=["<|endoftext|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tokenizer.train_from_iterator(make_documents(400, seed=1), trainer)
    path = tmp_path_factory.mktemp("bpe") / "tokenizer.json"
    tokenizer.save(str(path))
    return path


@pytest.fixture(scope="session")
def spm(tmp_path_factory) -> Path:
    """A SentencePiece BPE model (vocab 150) with BOS 1 and EOS 2."""
    import sentencepiece

    prefix = tmp_path_factory.mktemp("spm") / "spm"
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(make_documents(400, seed=2)), model_prefix=str(prefix), vocab_size=150,
        model_type="bpe", character_coverage=1.0, unk_id=0, bos_id=1, eos_id=2, pad_id=-1,
        minloglevel=2)
    return prefix.with_suffix(".model")
