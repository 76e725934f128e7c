"""Real processes: hydralearn-tokenize's shards read back, training from them, exact resume
after kill -9 on the jsonl source, and a bad record refused before any JAX work."""

import json
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from hydralearn.data.inputs import open_inputs
from hydralearn.data.loader import Loader
from hydralearn.errors import ConfigError
from tests.data import reference as ref
from tests.data.test_sources import SEQ, load_data
from tests.runtime.processes import SHORT, TIMEOUT_S, deterministic, env, errors, launch, run_cli, wait_for

TOKENIZE = [str(Path(sys.executable).parent / "hydralearn-tokenize")]
# The runtime tests' tiny run (12 steps, checkpoints every 4), on jsonl instead of synthetic.
JSONL_RUN = [o for o in SHORT if o != "data=synthetic"] + ["data=jsonl", "data.heldout_percent=10",
                                                          "trainer.steps=24"]


@pytest.fixture(scope="module")
def shards(tmp_path_factory, corpus, bpe) -> dict:
    out = tmp_path_factory.mktemp("shards") / "out"
    args = ["data=jsonl", f"data.paths=['{corpus['jsonl']}/*.jsonl']", "data/tokenizer=hf",
            f"data.tokenizer.path={bpe}"]
    done = subprocess.run([*TOKENIZE, *args, "--out", str(out), "--shard-tokens", "1000"], env=env(),
                          capture_output=True, text=True, timeout=TIMEOUT_S)
    again = subprocess.run([*TOKENIZE, *args, "--out", str(out)], env=env(), capture_output=True,
                           text=True, timeout=TIMEOUT_S)
    return {"out": out, "done": done, "again": again}


def test_tokenize_output_equals_direct_encoding(shards, corpus, bpe):
    done = shards["done"]
    assert done.returncode == 0, done.stderr[-2000:]
    assert "tokens/s" in done.stdout
    tokens, documents = [], []
    for path in sorted(shards["out"].glob("*.bin")):  # read back with numpy alone
        record = json.loads(path.with_suffix(".json").read_text())
        data = np.fromfile(path, dtype=record["dtype"])
        offsets = np.fromfile(path.with_suffix(".idx"), dtype="<u8")
        documents += [data[a:b].tolist() for a, b in zip(offsets[:-1], offsets[1:])]
        tokens.append(len(data))
    encode = ref.bpe_encoder(bpe)
    assert documents == [encode(t) for t in ref.jsonl_texts(corpus["jsonl"], "*.jsonl")]
    assert len(tokens) > 1  # --shard-tokens split them
    assert shards["again"].returncode == 2
    assert errors(shards["again"].stderr) == [
        f"hydralearn: error: --out {shards['out']} already holds token shards; choose an empty directory"]


def test_training_reads_the_shards(shards, corpus, bpe):
    """data=tokens: the shards record every document's token count, so training takes the
    windows order: an epoch holds each window of the joined train documents once, shuffled.
    Shards written with another tokenizer are refused."""
    data = ["data=tokens", f"data.paths=['{shards['out']}/*.bin']", "data/tokenizer=hf",
            f"data.tokenizer.path={bpe}"]
    encode = ref.bpe_encoder(bpe)
    texts = ref.jsonl_texts(corpus["jsonl"], "*.jsonl")
    config = load_data(*data)
    loader = Loader(config, inputs=open_inputs(config))
    split = loader.inputs.splits[0]
    read = [split.documents[int(n)].tolist() for n in split.train]
    assert len(read) > 40 and all(tuple(d) in {tuple(encode(t)) for t in texts} for d in read)
    train = ref.cut(np.concatenate(read), SEQ + 1)
    rows = ref.windows([next(loader) for _ in range(len(train) // 4 + 1)])
    loader.close()
    assert len(train) > 50 and ref.same_rows(rows[:len(train)], train)
    assert not np.array_equal(rows[:len(train)], train)
    with pytest.raises(ConfigError, match=r"\.bin: tokenized with hf tokenizer .* but data/tokenizer is byte"):
        load_data(*data[:2])


def test_shards_hold_out_the_documents_their_source_holds_out(shards, corpus, bpe):
    """The split follows the document: the JSONL files and the shards made from them (other
    files, other boundaries: --shard-tokens 1000) hold out the same documents."""
    tokenizer = ["data/tokenizer=hf", f"data.tokenizer.path={bpe}", "data.heldout_percent=30"]
    as_jsonl = open_inputs(load_data("data=jsonl", f"data.paths=['{corpus['jsonl']}/*.jsonl']", *tokenizer)).splits[0]
    as_tokens = open_inputs(load_data("data=tokens", f"data.paths=['{shards['out']}/*.bin']", *tokenizer)).splits[0]
    encode = ref.bpe_encoder(bpe)

    def held(split, tokens) -> list[tuple]:
        return sorted(tuple(tokens(split.heldout_source[int(i)])) for i in split.heldout)
    from_jsonl = held(as_jsonl, encode)
    assert 5 <= len(from_jsonl) < len(as_jsonl.documents) // 2
    assert held(as_tokens, lambda d: d.tolist()) == from_jsonl


@pytest.fixture(scope="module")
def jsonl_runs(tmp_path_factory, corpus) -> dict:
    """The uninterrupted run and one killed (-9) after its step-8 checkpoint, then rerun."""
    paths = f"data.paths=['{corpus['jsonl']}/*.jsonl']"
    baseline_dir, killed_dir = tmp_path_factory.mktemp("jsonl_base"), tmp_path_factory.mktemp("jsonl_killed")
    baseline = launch(baseline_dir, *JSONL_RUN, paths)
    process = launch(killed_dir, *JSONL_RUN, paths)
    checkpoints = killed_dir / "checkpoints"
    wait_for(lambda: checkpoints.is_dir() and (checkpoints / "8").is_dir(), process, "step 8's checkpoint")
    process.send_signal(signal.SIGKILL)
    process.wait()
    killed_at = sorted(int(p.name) for p in checkpoints.iterdir() if p.name.isdigit())
    resumed = run_cli(killed_dir, *JSONL_RUN, paths)
    base = baseline.communicate(timeout=TIMEOUT_S)
    return {"baseline": baseline_dir, "base_rc": baseline.returncode, "base_err": base[1],
            "killed": killed_dir, "killed_rc": process.returncode, "killed_at": killed_at, "resumed": resumed}


@pytest.mark.slow
def test_kill_9_on_jsonl_resumes_bit_for_bit(jsonl_runs):
    assert jsonl_runs["base_rc"] == 0, jsonl_runs["base_err"][-3000:]
    assert jsonl_runs["killed_rc"] == -signal.SIGKILL and jsonl_runs["killed_at"][-1] < 24
    resumed = jsonl_runs["resumed"]
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"resuming from step {jsonl_runs['killed_at'][-1]}" in resumed.stdout + resumed.stderr
    expected, got = deterministic(jsonl_runs["baseline"]), deterministic(jsonl_runs["killed"])
    assert sorted(expected) == list(range(1, 25))
    assert got == expected  # every step's loss, grad norm, lr and eval loss, exactly
    data_item = jsonl_runs["killed"] / "checkpoints" / "24" / "data" / "process_0-of-1.json"
    # Bytes take the windows order: the position is the count of windows read, 24 steps x 8 rows.
    assert json.loads(data_item.read_text()) == {"next_index": 24 * 8}


def test_bad_record_is_refused_before_any_work(tmp_path):
    (tmp_path / "bad.jsonl").write_text('{"text": "fine"}\n{"txt": "typo"}\n')
    run_dir = tmp_path / "run"
    result = run_cli(run_dir, *JSONL_RUN, f"data.paths=['{tmp_path}/*.jsonl']")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert errors(result.stderr) == [
        f"hydralearn: error: data: {tmp_path}/bad.jsonl line 2: no 'text' string (it has: txt); "
        "set data.text_key=<key> or set data.bad_records=skip"]
    assert not run_dir.exists()
