"""data=chat against independent references: rendering and tokens equal transformers'
`apply_chat_template`, the assistant mask equals its `return_assistant_tokens_mask` (template
with generation blocks) or spans found by string search here (template without); bad records
stop the run naming file and line, or are counted."""

import json

import numpy as np
import pytest

from hydralearn.data.chat import ChatEncoder
from hydralearn.data.chat_template import BUILTINS, load_template
from hydralearn.data.config import BadRecords, ChatData, ChatFormat, LossMask, Overlong
from hydralearn.data.inputs import open_inputs
from hydralearn.data.loader import first_batches
from hydralearn.data.tokenizer import load
from hydralearn.data.tokenizer_config import HfTokenizerConfig
from hydralearn.errors import ConfigError

# ChatML with the assistant's content and end token in a generation block.
MARKED = ("{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\n' }}"
          "{% if m['role'] == 'assistant' %}{% generation %}{{ m['content'] + '<|im_end|>' }}"
          "{% endgeneration %}{% else %}{{ m['content'] + '<|im_end|>' }}{% endif %}{{ '\n' }}{% endfor %}"
          "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}")
# No generation blocks, a default system turn, whitespace control, loop.first, raise_exception.
PLAIN = """{%- if messages[0]['role'] != 'system' %}
{{- '<|im_start|>system\nYou are helpful.<|im_end|>\n' }}
{%- endif %}
{%- for m in messages %}
    {%- if m['role'] not in ['system', 'user', 'assistant'] %}{{ raise_exception('bad role') }}{% endif %}
    {{- '<|im_start|>' + m['role'] + '\n' + m['content'] | trim + '<|im_end|>\n' }}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\n' }}
{%- endif %}
"""
CONVERSATIONS = [
    [{"role": "system", "content": "You add numbers."}, {"role": "user", "content": "hello 1 + 2"},
     {"role": "assistant", "content": "3, my friend"}, {"role": "user", "content": "and 4 + 4?"},
     {"role": "assistant", "content": " 8\n"}],
    [{"role": "user", "content": "how are you"}, {"role": "assistant", "content": "well, thank you"}],
    [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "a"},
     {"role": "assistant", "content": "b"}, {"role": "user", "content": "c"},
     {"role": "assistant", "content": "d e f"}, {"role": "user", "content": "g"}],
]


@pytest.fixture(scope="module", params=["marked", "plain"])
def chat_tokenizer(request, tmp_path_factory, bpe):
    """(template kind, transformers tokenizer, its saved directory) for a BPE with ChatML tokens."""
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

    raw = Tokenizer.from_file(str(bpe))
    raw.add_special_tokens(["<|im_start|>", "<|im_end|>"])
    hf = PreTrainedTokenizerFast(tokenizer_object=raw, eos_token="<|im_end|>",
                                 chat_template=MARKED if request.param == "marked" else PLAIN)
    directory = tmp_path_factory.mktemp(f"chat_{request.param}")
    hf.save_pretrained(str(directory))
    return request.param, hf, directory


def _encoder(directory, **fields) -> ChatEncoder:
    config = ChatData(paths=["unused"], seq_len=512, tokenizer=HfTokenizerConfig(path=str(directory)), **fields)
    return ChatEncoder(config, load(config.tokenizer), where=str(directory))


def test_rendering_and_tokens_equal_transformers(chat_tokenizer):
    _, hf, directory = chat_tokenizer
    encoder = _encoder(directory)
    for conversation in CONVERSATIONS:
        for prompt in (False, True):
            assert encoder.template.render(conversation, add_generation_prompt=prompt) == \
                hf.apply_chat_template(conversation, tokenize=False, add_generation_prompt=prompt)
        expected = hf.apply_chat_template(conversation, tokenize=True, return_dict=True)["input_ids"]
        assert encoder.example(conversation).tokens.tolist() == list(expected)


def test_served_prompt_is_the_trained_prefix(chat_tokenizer):
    """What generation feeds the model (--chat) is token for token what training put before the
    assistant's turn, and equals transformers' prompt with add_generation_prompt."""
    _, hf, directory = chat_tokenizer
    encoder = _encoder(directory)
    for conversation in CONVERSATIONS:
        last = max(i for i, m in enumerate(conversation) if m["role"] == "assistant")
        served = encoder.prompt(conversation[:last])
        assert served == list(hf.apply_chat_template(conversation[:last], tokenize=True, return_dict=True,
                                                     add_generation_prompt=True)["input_ids"])
        trained = encoder.example(conversation[:last + 1])
        assert trained.tokens[:len(served)].tolist() == served and not trained.targets[len(served) - 1]
        assert trained.targets[len(served)]  # the answer's first token is the first target after it


def _spans_by_search(text: str) -> list[tuple[int, int]]:
    """Each assistant turn: from after its header to the end of its <|im_end|>."""
    spans, head, end = [], "<|im_start|>assistant\n", "<|im_end|>"
    at = text.find(head)
    while at >= 0:
        start = at + len(head)
        stop = text.index(end, start) + len(end)
        spans.append((start, stop))
        at = text.find(head, stop)
    return spans


def test_assistant_mask_equals_reference(chat_tokenizer):
    kind, hf, directory = chat_tokenizer
    encoder, last = _encoder(directory), _encoder(directory, loss_mask=LossMask.last_turn)
    for conversation in CONVERSATIONS:
        targets = encoder.example(conversation).targets
        encoded = hf.apply_chat_template(conversation, tokenize=True, return_dict=True,
                                         return_assistant_tokens_mask=(kind == "marked"))
        if kind == "marked":
            expected = np.array(encoded["assistant_masks"], bool)
        else:  # the spans found by string search, mapped to tokens as transformers maps them
            text = hf.apply_chat_template(conversation, tokenize=False)
            full = hf(text, add_special_tokens=False)
            expected = np.zeros(len(full["input_ids"]), bool)
            for start, stop in _spans_by_search(text):
                expected[full.char_to_token(start):full.char_to_token(stop - 1) + 1] = True
        assert targets.any() and targets.tolist() == expected.tolist()
        # last_turn: the same tokens from the last assistant turn's first token on
        first_of_last = np.flatnonzero(np.diff(np.concatenate([[0], expected.astype(int)])) == 1)[-1]
        expected[:first_of_last] = False
        assert last.example(conversation).targets.tolist() == expected.tolist()


def test_builtin_templates_are_transformers_renderings(chat_tokenizer):
    """The built-ins render in transformers' environment exactly as here."""
    _, hf, directory = chat_tokenizer
    for name, builtin in BUILTINS.items():
        ours = load_template(name, tokenizer_template=None, variables={}, where="-")
        for conversation in CONVERSATIONS:
            assert ours.render(conversation, add_generation_prompt=True) == hf.apply_chat_template(
                conversation, chat_template=builtin.source, tokenize=False, add_generation_prompt=True)


def _write(path, records) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return str(path)


def test_prompt_completion_targets_are_the_completion(tmp_path, bpe):
    tokenizer = load(HfTokenizerConfig(path=str(bpe)))
    config = ChatData(paths=[_write(tmp_path / "pc.jsonl", [{"prompt": "doc 1: alpha", "completion": " beta gamma"}] * 40)],
                      format=ChatFormat.prompt_completion, seq_len=32, batch_size=2,
                      tokenizer=HfTokenizerConfig(path=str(bpe)))
    batch = first_batches(config, 1)[0]
    completion = tokenizer.encode(" beta gamma") + [tokenizer.eos_id]
    row, segments = batch.targets[0], batch.segment_ids[0]
    first = row[segments == 1]
    assert first[first >= 0].tolist() == completion  # the completion and EOS, nothing of the prompt
    assert (row[segments == 0] < 0).all()  # padding is no target


def test_bad_records_name_file_and_line(tmp_path):
    good = {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]}
    cases = {
        "no assistant turn": {"messages": [{"role": "user", "content": "hi"}]},
        "unknown role 'robot'": {"messages": [{"role": "robot", "content": "hi"},
                                              {"role": "assistant", "content": "yo"}]},
        "does not render": {"messages": [{"role": "user", "content": "BOOM"},
                                         {"role": "assistant", "content": "yo"}]},
    }
    template = tmp_path / "t.jinja"
    template.write_text("{% for m in messages %}{% if m['content'] == 'BOOM' %}"
                        "{{ raise_exception('no booms') }}{% endif %}{{ m['role'] + ': ' + m['content'] + '\n' }}"
                        "{% endfor %}")
    for problem, bad in cases.items():
        path = _write(tmp_path / "c.jsonl", [good] * 30 + [bad] + [good] * 30)
        with pytest.raises(ConfigError) as e:
            open_inputs(ChatData(paths=[path], template=str(template)))
        assert len(e.value.errors) == 1 and f"c.jsonl line 31: " in e.value.errors[0], e.value.errors
        assert problem in e.value.errors[0] and "data.bad_records=skip" in e.value.errors[0]
    path = _write(tmp_path / "all.jsonl", [good] * 30 + list(cases.values()) + [good] * 30)
    inputs = open_inputs(ChatData(paths=[path], template=str(template), bad_records=BadRecords.skip))
    assert inputs.bad_records == 3 and sum(len(s.train) + len(s.heldout) for s in inputs.splits) == 60


def test_missing_special_token_is_one_line(bpe):
    config = ChatData(paths=["unused"], template="llama3", tokenizer=HfTokenizerConfig(path=str(bpe)))
    with pytest.raises(ConfigError) as e:
        ChatEncoder(config, load(config.tokenizer), where="bpe")
    assert len(e.value.errors) == 1 and "<|begin_of_text|>" in e.value.errors[0]


def test_overlong_conversations_lose_old_turns_or_are_dropped(tmp_path):
    turn = [{"role": "user", "content": "u" * 30}, {"role": "assistant", "content": "a" * 30}]
    record = {"messages": [{"role": "system", "content": "S"}] + turn * 4}
    path = _write(tmp_path / "long.jsonl", [record] * 40)
    config = ChatData(paths=[path], template="chatml", seq_len=300, batch_size=2)
    example = open_inputs(config).splits[0].documents[0]
    text = bytes(example.tokens.astype(np.uint8)).decode()
    assert len(example.tokens) <= 301 and text.startswith("<|im_start|>system\nS<|im_end|>\n<|im_start|>user")
    assert text.count("<|im_start|>assistant") == 2 and example.targets.any()  # the two newest exchanges
    with pytest.raises(ConfigError, match="no record to train on: 40 of them longer"):
        open_inputs(ChatData(paths=[path], template="chatml", seq_len=300, overlong=Overlong.drop))


def test_chat_batches_resume_exactly(tmp_path):
    rng = np.random.default_rng(0)
    records = [{"messages": [{"role": "user", "content": "q" * int(rng.integers(1, 20))},
                             {"role": "assistant", "content": "a" * int(rng.integers(1, 20))}]} for _ in range(80)]
    config = ChatData(paths=[_write(tmp_path / "c.jsonl", records)], template="chatml", seq_len=128,
                      batch_size=2, read_threads=0)
    from hydralearn.data.loader import open_loader
    loader = open_loader(config)
    for _ in range(3):
        next(loader)
    state = loader.get_state()
    expected = [next(loader) for _ in range(2)]
    loader.close()
    resumed = open_loader(config)
    resumed.set_state(state)
    for want in expected:
        got = next(resumed)
        assert np.array_equal(got.inputs, want.inputs) and np.array_equal(got.targets, want.targets)
    resumed.close()


def test_parquet_and_saved_dataset_read_as_json_lines(tmp_path):
    import datasets
    import pyarrow as pa
    import pyarrow.parquet as pq

    records = [{"messages": c} for c in CONVERSATIONS * 20]
    pq.write_table(pa.Table.from_pylist(records), tmp_path / "c.parquet")
    datasets.Dataset.from_list(records).save_to_disk(str(tmp_path / "ds"))
    opened = {name: open_inputs(ChatData(template="chatml", heldout_percent=50, **where)).splits[0]
              for name, where in {"jsonl": {"paths": [_write(tmp_path / "c.jsonl", records)]},
                                  "parquet": {"paths": [str(tmp_path / "c.parquet")]},
                                  "hf_disk": {"path": str(tmp_path / "ds")}}.items()}
    reference = opened["jsonl"].documents
    assert len(reference) == len(records)
    for name in ("parquet", "hf_disk"):
        documents = opened[name].documents
        assert len(documents) == len(records)
        for i in (0, 1, 2, 59):
            assert np.array_equal(documents[i].tokens, reference[i].tokens)
            assert np.array_equal(documents[i].targets, reference[i].targets)
