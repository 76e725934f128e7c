"""Every source's token stream against the plain-Python reference (tests/data/reference.py):
documents read and encoded independently, joined with EOS, cut into windows. Tokenizers
whose token counts are known before tokenizing (bytes, token shards) give those windows in a
global shuffle (the windows order); the others, documents shuffled and streamed."""

import numpy as np
import pytest

from hydralearn.config import compose as compose_config
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
    "jsonl+bpe": (lambda c, t: ["data=jsonl", f"data.paths=['{c['jsonl']}/*.jsonl']", "data/tokenizer=hf",
                                f"data.tokenizer.path={t['bpe']}"], "bpe",
                  lambda c: ref.jsonl_texts(c["jsonl"], "*.jsonl")),
    "jsonl.gz+spm": (lambda c, t: ["data=jsonl", f"data.paths=['{c['gz']}/*.gz']", "data/tokenizer=sentencepiece",
                                   f"data.tokenizer.path={t['spm']}"], "spm",
                     lambda c: ref.jsonl_texts(c["gz"], "*.gz")),
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


WINDOW_CASES = {  # name: (data overrides, the reference documents)
    "text": (lambda c: ["data=text", f"data.paths=['{c['text']}/**/*.txt']"], lambda c, docs: docs),
    "jsonl.zst": (lambda c: ["data=jsonl", f"data.paths=['{c['zst']}/*.zst']"],
                  lambda c, docs: ref.jsonl_texts(c["zst"], "*.zst")),
    "stdlib": (lambda c: ["data=stdlib", "data.max_bytes=60000", "data.heldout_percent=40"],
               lambda c, docs: ref.stdlib_texts(60_000)),
}


def epoch_windows(loader, texts: list[str], encode) -> tuple[np.ndarray, np.ndarray]:
    """The reference windows of the train and held-out documents: each split's documents (as
    the loader split them) encoded independently, joined, cut into windows of SEQ + 1."""
    split = loader.inputs.splits[0]
    read = {n: split.documents[int(n)] for n in (*split.train, *split.heldout)}
    assert sorted(read.values()) == sorted(texts)  # the source read every document, once
    return tuple(ref.cut(np.concatenate([encode(read[int(n)]) for n in indices]), SEQ + 1)
                 for indices in (split.train, split.heldout))


@pytest.mark.parametrize("case", WINDOW_CASES)
def test_windows_order_shuffles_the_windows_of_every_epoch(case, corpus, documents):
    overrides, texts = WINDOW_CASES[case]
    data = load_data(*overrides(corpus))
    loader = Loader(data, inputs=open_inputs(data))
    train, heldout = epoch_windows(loader, texts(corpus, documents), ref.byte_encoder())
    epoch = len(train)
    rows = ref.windows([next(loader) for _ in range(epoch // 2 + 1)])  # two epochs, 4 rows a batch
    loader.close()
    assert epoch > 50 and len(heldout) > 10
    first, second = rows[:epoch], rows[epoch:2 * epoch]
    assert ref.same_rows(first, train) and ref.same_rows(second, train)  # every window once an epoch
    assert not np.array_equal(first, train) and not np.array_equal(first, second)  # reshuffled
    # Held-out batches: windows evenly spaced over the held-out documents, in order.
    evaluated = ref.windows(loader.heldout(3))
    spaced = np.linspace(0, len(heldout) - 1, len(evaluated)).round().astype(int)
    np.testing.assert_array_equal(evaluated, heldout[spaced])


def test_windows_order_seeds_and_process_shards(corpus, documents):
    """Another seed, another order; two processes' windows are disjoint and cover the epoch."""
    overrides = ["data=jsonl", f"data.paths=['{corpus['jsonl']}/*.jsonl']"]
    rows, loader = stream(load_data(*overrides), count=BATCHES)
    train, _ = epoch_windows(loader, documents, ref.byte_encoder())
    epoch = len(train)
    reseeded, _ = stream(load_data(*overrides, "data.seed=1"), count=BATCHES)
    assert ref.same_rows(reseeded[:epoch], train) and not np.array_equal(reseeded[:epoch], rows[:epoch])
    shards = [stream(load_data(*overrides), count=BATCHES, process=(i, 2))[0] for i in range(2)]
    halves = [shard[:n] for shard, n in zip(shards, ((epoch + 1) // 2, epoch // 2))]
    assert ref.same_rows(np.concatenate(halves), train)
    assert not {r.tobytes() for r in halves[0]} & {r.tobytes() for r in halves[1]}
    # Held-out: each process evaluates its half of every one-process batch's rows.
    whole = loader.heldout(3)
    parts = [Loader(loader.config, inputs=loader.inputs, process=(i, 2)) for i in range(2)]
    for b, batch in enumerate(whole):
        rows = np.concatenate([part.heldout(3)[b].inputs for part in parts])
        np.testing.assert_array_equal(rows, batch.inputs)
    for part in parts:
        part.close()


def test_documents_order_epochs_and_seeds_reshuffle(corpus, bpe):
    paths = [f"data.paths=['{corpus['jsonl']}/*.jsonl']", "data=jsonl", "data/tokenizer=hf",
             f"data.tokenizer.path={bpe}"]
    encode = ref.bpe_encoder(bpe)
    texts = ref.jsonl_texts(corpus["jsonl"], "*.jsonl")
    reference = {tuple(encode(t)): n for n, t in enumerate(texts)}

    def epochs(*extra):
        rows, _ = stream(load_data(*paths, *extra), count=400)
        found = ref.pieces(rows.ravel(), encode("")[-1])
        first = ref.first_epoch(found, reference)
        return first, ref.first_epoch(found[len(first):], reference)

    first, second = epochs()
    assert sorted(first) == sorted(second) and first != second
    assert epochs("data.seed=1")[0] != first


def test_documents_order_process_shards_are_disjoint_and_cover_the_epoch(corpus, bpe):
    data = load_data("data=jsonl", f"data.paths=['{corpus['jsonl']}/*.jsonl']", "data/tokenizer=hf",
                     f"data.tokenizer.path={bpe}")
    texts = ref.jsonl_texts(corpus["jsonl"], "*.jsonl")
    encode = ref.bpe_encoder(bpe)
    eos = encode("")[-1]
    reference = {tuple(encode(t)): n for n, t in enumerate(texts)}
    shards = [ref.first_epoch(ref.pieces(stream(data, count=80, process=(i, 2))[0].ravel(), eos), reference)
              for i in range(2)]
    everything, _ = stream(data, count=BATCHES)
    whole = ref.first_epoch(ref.pieces(everything.ravel(), eos), reference)
    assert not set(shards[0]) & set(shards[1])
    assert sorted(shards[0] + shards[1]) == sorted(whole)
    assert abs(len(shards[0]) - len(shards[1])) <= 1
