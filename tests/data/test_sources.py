"""Every source's token stream against the plain-Python reference (tests/data/reference.py):
documents read and encoded independently, joined with EOS, cut into windows."""

import numpy as np
import pytest

from hydralearn.compose import config as compose_config
from hydralearn.data.inputs import open_inputs
from hydralearn.data.loader import Loader
from tests.data import reference as ref

SEQ = 24
BATCHES = 160  # > one epoch of the ~60 generated documents, byte-level too


def load_data(*overrides: str, location=compose_config.DEFAULT):
    config = compose_config.load(["model.vocab_size=auto", f"data.seq_len={SEQ}", "data.batch_size=4",
                                  "data.heldout_percent=10", *overrides], location)
    return config.data


def stream(data, count: int = BATCHES, process=(0, 1)):
    loader = Loader(data, inputs=open_inputs(data), process=process)
    try:
        return ref.windows([next(loader) for _ in range(count)]), loader
    finally:
        loader.close()


CASES = {  # name: (data overrides, tokenizer, the reference documents)
    "text+byte": (lambda c, t: ["data=text", f"data.paths=['{c['text']}/**/*.txt']"], "byte",
                  lambda c: None),
    "jsonl+bpe": (lambda c, t: ["data=jsonl", f"data.paths=['{c['jsonl']}/*.jsonl']", "data/tokenizer=hf",
                                f"data.tokenizer.path={t['bpe']}"], "bpe",
                  lambda c: ref.jsonl_texts(c["jsonl"], "*.jsonl")),
    "jsonl.gz+spm": (lambda c, t: ["data=jsonl", f"data.paths=['{c['gz']}/*.gz']", "data/tokenizer=sentencepiece",
                                   f"data.tokenizer.path={t['spm']}"], "spm",
                     lambda c: ref.jsonl_texts(c["gz"], "*.gz")),
    "jsonl.zst+byte": (lambda c, t: ["data=jsonl", f"data.paths=['{c['zst']}/*.zst']"], "byte",
                       lambda c: ref.jsonl_texts(c["zst"], "*.zst")),
    "parquet+bpe": (lambda c, t: ["data=parquet", f"data.paths=['{c['parquet']}/*.parquet']", "data.text_key=body",
                                  "data/tokenizer=hf", f"data.tokenizer.path={t['bpe'].parent}"], "bpe",
                    lambda c: None),
    "hf_disk+spm": (lambda c, t: ["data=hf_disk", f"data.path={c['hf']}", "data/tokenizer=sentencepiece",
                                  f"data.tokenizer.path={t['spm']}"], "spm", lambda c: None),
}


@pytest.mark.parametrize("case", CASES)
def test_stream_equals_reference(case, corpus, documents, bpe, spm):
    overrides, kind, texts = CASES[case]
    encode = {"byte": ref.byte_encoder, "bpe": lambda: ref.bpe_encoder(bpe),
              "spm": lambda: ref.spm_encoder(spm)}[kind]()
    texts = texts(corpus) or documents
    reference = {tuple(encode(t)): n for n, t in enumerate(texts)}
    assert len(reference) == len(texts)  # documents are distinct
    data = load_data(*overrides(corpus, {"bpe": bpe, "spm": spm}))
    rows, loader = stream(data)
    eos = reference_eos = next(iter(reference))[-1]
    assert loader.tokenizer.eos_id == reference_eos
    order = ref.first_epoch(ref.pieces(rows.ravel(), eos), reference)
    heldout = ref.first_epoch(ref.pieces(ref.windows(loader.heldout(20)).ravel(), eos), reference)
    # Train and held-out documents: disjoint, together every document, ~10% held out.
    assert len(order) == len(texts) - len(heldout) and not set(order) & set(heldout)
    assert 1 <= len(heldout) <= len(texts) // 4
    assert order != sorted(order)  # shuffled
    expected = np.concatenate([encode(texts[n]) for n in order])
    full = len(expected) // (SEQ + 1)
    np.testing.assert_array_equal(rows[:full], expected[:full * (SEQ + 1)].reshape(full, SEQ + 1))


def test_stdlib_is_its_python_files(documents):
    data = load_data("data=stdlib", "data.max_bytes=200000", "data.heldout_percent=5")
    texts = ref.stdlib_texts(200_000)
    reference = {tuple(ref.byte_encoder()(t)): n for n, t in enumerate(texts)}
    rows, _ = stream(data, count=60)
    order = ref.first_epoch(ref.pieces(rows.ravel(), 0), reference)
    expected = np.concatenate([ref.byte_encoder()(texts[n]) for n in order])
    full = len(expected) // (SEQ + 1)
    assert full > 10
    np.testing.assert_array_equal(rows[:full], expected[:full * (SEQ + 1)].reshape(full, SEQ + 1))


def test_epochs_and_seeds_reshuffle(corpus):
    paths = [f"data.paths=['{corpus['jsonl']}/*.jsonl']", "data=jsonl"]
    encode = ref.byte_encoder()
    texts = ref.jsonl_texts(corpus["jsonl"], "*.jsonl")
    reference = {tuple(encode(t)): n for n, t in enumerate(texts)}

    def epochs(*extra):
        rows, _ = stream(load_data(*paths, *extra), count=400)
        found = ref.pieces(rows.ravel(), 0)
        first = ref.first_epoch(found, reference)
        return first, ref.first_epoch(found[len(first):], reference)

    first, second = epochs()
    assert sorted(first) == sorted(second) and first != second
    assert epochs("data.seed=1")[0] != first


def test_process_shards_are_disjoint_and_cover_the_epoch(corpus):
    data = load_data("data=jsonl", f"data.paths=['{corpus['jsonl']}/*.jsonl']")
    texts = ref.jsonl_texts(corpus["jsonl"], "*.jsonl")
    reference = {tuple(ref.byte_encoder()(t)): n for n, t in enumerate(texts)}
    shards = [ref.first_epoch(ref.pieces(stream(data, count=80, process=(i, 2))[0].ravel(), 0), reference)
              for i in range(2)]
    everything, _ = stream(data, count=BATCHES)
    whole = ref.first_epoch(ref.pieces(everything.ravel(), 0), reference)
    assert not set(shards[0]) & set(shards[1])
    assert sorted(shards[0] + shards[1]) == sorted(whole)
    assert abs(len(shards[0]) - len(shards[1])) <= 1
