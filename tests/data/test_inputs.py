"""Resume from a JSON state for every source, mixtures, and bad input: one line each."""

import json

import numpy as np
import pytest

from hydralearn.config import compose as compose_config
from hydralearn.compose.resolve import resolve
from hydralearn.data.inputs import open_inputs
from hydralearn.data.loader import Loader
from hydralearn.errors import ConfigError
from tests.data.test_sources import load_data


def sources(corpus, bpe, spm) -> dict[str, list[str]]:
    return {
        "text": ["data=text", f"data.paths=['{corpus['text']}/**/*.txt']"],
        "jsonl_segments": ["data=jsonl", f"data.paths=['{corpus['jsonl']}/*.jsonl']", "data.packing=segments",
                           "data/tokenizer=hf", f"data.tokenizer.path={bpe}"],
        "jsonl_bpe": ["data=jsonl", f"data.paths=['{corpus['jsonl']}/*.jsonl']", "data/tokenizer=hf",
                      f"data.tokenizer.path={bpe}"],
        "parquet": ["data=parquet", f"data.paths=['{corpus['parquet']}/*']", "data.text_key=body"],
        "hf_disk": ["data=hf_disk", f"data.path={corpus['hf']}", "data/tokenizer=sentencepiece",
                    f"data.tokenizer.path={spm}"],
        "synthetic": ["data=synthetic"],
        "mixture": ["data=mix", "data.mixture.a.weight=3"],
    }


MIX = """defaults:
  - mixture
  - _self_
mixture:
  a:
    source: jsonl
    paths: ['{jsonl}/*.jsonl']
  b:
    source: text
    paths: ['{text}/*.txt']
"""


@pytest.fixture(scope="module")
def config_dir(tmp_path_factory, corpus):
    """A user's own config directory holding a mixture option, data=mix."""
    root = tmp_path_factory.mktemp("my_conf")
    (root / "data").mkdir()
    (root / "data" / "mix.yaml").write_text(MIX.format(jsonl=corpus["jsonl"], text=corpus["text"]))
    return compose_config.Location(config_dir=str(root))


def _loader(data):
    return Loader(data, inputs=None if data.source.value == "synthetic" else open_inputs(data))


def _fields(batch):
    return [x for x in (batch.inputs, batch.targets, batch.segment_ids, batch.positions) if x is not None]


@pytest.mark.parametrize("name", ["text", "jsonl_segments", "jsonl_bpe", "parquet", "hf_disk", "synthetic",
                                  "mixture"])
def test_resume_from_saved_state_is_exact(name, corpus, bpe, spm, config_dir):
    data = load_data(*sources(corpus, bpe, spm)[name], location=config_dir)
    first = _loader(data)
    for _ in range(7):
        next(first)
    state = json.loads(json.dumps(first.get_state()))  # as a checkpoint stores it
    expected = [next(first) for _ in range(9)]
    first.close()
    second = _loader(data)
    second.set_state(state)
    got = [next(second) for _ in range(9)]
    second.close()
    for a, b in zip(expected, got):
        for x, y in zip(_fields(a), _fields(b), strict=True):
            np.testing.assert_array_equal(x, y)


def test_a_position_of_another_order_is_refused(corpus, bpe, spm, config_dir):
    """A checkpoint's data position from the documents order, restored into the windows order
    (bytes instead of the BPE): one line naming the order, never a Grain traceback."""
    streamed = _loader(load_data(*sources(corpus, bpe, spm)["jsonl_bpe"]))
    next(streamed)
    state = streamed.get_state()
    streamed.close()
    windows = _loader(load_data("data=jsonl", f"data.paths=['{corpus['jsonl']}/*.jsonl']"))
    with pytest.raises(ConfigError, match=r"written for another data order than this run's \(windows order"):
        windows.set_state(state)
    windows.close()


def test_mixture_realises_its_weights(corpus, bpe, spm, config_dir):
    data = load_data(*sources(corpus, bpe, spm)["mixture"], location=config_dir)
    loader = _loader(data)
    stats = [loader.stats(next(loader)) for _ in range(60)]
    loader.close()
    assert loader.names == ("a", "b")
    share_a = np.mean([s["share_a"] for s in stats])
    # 3:1 by documents; b's files (the top-level half of the text files) are as long on average.
    assert 0.6 < share_a < 0.9, share_a
    assert all(abs(s["share_a"] + s["share_b"] - 1) < 1e-9 for s in stats)


def _errors(*overrides, open_data=True) -> list[str]:
    with pytest.raises(ConfigError) as error:
        config = compose_config.load(list(overrides))
        if open_data:
            open_inputs(config.data)
    return error.value.errors


def test_a_file_changed_during_the_run_is_named(tmp_path):
    """The windows order counts tokens when the run opens its data; a file rewritten later is
    one line (ConfigError, exit 2), not a wrong window or a Grain traceback."""
    for i in range(20):
        (tmp_path / f"{i}.txt").write_text("x" * 300)
    data = load_data("data=text", f"data.paths=['{tmp_path}/*.txt']", "data.heldout_percent=20")
    loader = _loader(data)
    for i in range(20):
        (tmp_path / f"{i}.txt").write_text("y" * 10)
    with pytest.raises(ConfigError, match=r"now has 11 tokens, not the 301 counted when the run opened"):
        for _ in range(200):
            next(loader)
    loader.close()


def test_bad_files(corpus, tmp_path):
    (tmp_path / "empty.txt").write_text("")
    (tmp_path / "gone.txt").symlink_to(tmp_path / "nowhere")
    assert _errors("data=text", f"data.paths=['{tmp_path}/none*.txt']", open_data=False) == \
        [f"data.paths: '{tmp_path}/none*.txt' matches no file"]
    assert _errors("data=text", f"data.paths=['{tmp_path}/*.txt']", open_data=False) == [
        f"data.paths: {tmp_path}/empty.txt is empty",
        f"data.paths: cannot read {tmp_path}/gone.txt (No such file or directory)"]


def test_bad_json_lines_stop_or_are_skipped(tmp_path):
    (tmp_path / "a.jsonl").write_text('{"text": "one"}\n{"text": "two"\n{"body": "three"}\n'
                                      + "".join(f'{{"text": "doc {i}"}}\n' for i in range(40)))
    paths = ["data=jsonl", f"data.paths=['{tmp_path}/a.jsonl']", "data.heldout_percent=20"]
    (line,) = _errors(*paths)
    assert line.startswith(f"data: {tmp_path}/a.jsonl line 2: not JSON (")
    assert line.endswith("fix the line or set data.bad_records=skip")
    inputs = open_inputs(compose_config.load([*paths, "data.bad_records=skip"]).data)
    assert inputs.bad_records == 2 and len(inputs.splits[0].documents) == 41
    assert inputs.splits[0].documents.bad_records[1] == \
        f"{tmp_path}/a.jsonl line 3: no 'text' string (it has: body)"


def test_tokenizer_problems(tmp_path, bpe, spm):
    (tmp_path / "broken.json").write_text("{not json")
    missing = _errors("data/tokenizer=hf", f"data.tokenizer.path={tmp_path}/nope.json", "model.vocab_size=auto",
                      open_data=False)
    assert missing == [f"data.tokenizer.path={tmp_path}/nope.json: no such file"]
    (broken,) = _errors("data/tokenizer=hf", f"data.tokenizer.path={tmp_path}/broken.json", open_data=False)
    assert broken.startswith(f"data.tokenizer.path={tmp_path}/broken.json: not a Hugging Face tokenizer.json")
    (wrong,) = _errors("data/tokenizer=sentencepiece", f"data.tokenizer.path={bpe}", open_data=False)
    assert "not a SentencePiece model" in wrong
    (small,) = _errors("data/tokenizer=hf", f"data.tokenizer.path={bpe}", open_data=False)
    assert small == ("model.vocab_size=256 is smaller than the tokenizer's vocabulary (300); set "
                     "model.vocab_size=300 or more, or model.vocab_size=auto")


def test_vocab_auto_pads_the_tokenizer_to_128(bpe, spm):
    for path, padded in ((bpe, 384), (spm, 256)):
        kind = "hf" if path == bpe else "sentencepiece"
        config = compose_config.load([f"data/tokenizer={kind}", f"data.tokenizer.path={path}", "model.vocab_size=auto"])
        assert config.model.vocab_size == "auto"
        assert resolve(config, device_count=1).model.vocab_size == padded


def test_special_tokens_follow_the_tokenizer(bpe, spm):
    from hydralearn.data.tokenizer import load
    from hydralearn.data.tokenizer_config import HfTokenizerConfig, SentencePieceConfig

    hf = load(HfTokenizerConfig(path=str(bpe)))
    assert (hf.bos_id, hf.eos_id) == (None, 0)
    assert hf.document("a </s> <|endoftext|>")[-1] == 0 and 0 not in hf.document("<|endoftext|>")[:-1]
    sp = load(SentencePieceConfig(path=str(spm)))
    assert (sp.bos_id, sp.eos_id) == (1, 2) and sp.document("doc")[0] == 1
