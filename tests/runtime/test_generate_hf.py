"""Greedy generation against transformers' own `generate` (its KV cache, torch CPU, float32):
small random Llama, Mistral and Mixtral models are made and saved by transformers, imported
on the fly as hydralearn-generate does, and must produce the same tokens, token for token;
then text through a tokenizer.json: the CLI against transformers, bits per byte against its loss."""

import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import (LlamaConfig, LlamaForCausalLM, MistralConfig, MistralForCausalLM,
                          MixtralConfig, MixtralForCausalLM)

from hydralearn.runtime.generate import Generator
from hydralearn.runtime.sampling import Sampling
from hydralearn.cli.target import load

SMALL = dict(vocab_size=256, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
             num_attention_heads=4, num_key_value_heads=2, initializer_range=0.1, rms_norm_eps=1e-5)
FAMILIES = {
    "llama": lambda: LlamaForCausalLM(LlamaConfig(**SMALL)),
    "mistral": lambda: MistralForCausalLM(MistralConfig(**SMALL, sliding_window=None, head_dim=24)),
    "mixtral": lambda: MixtralForCausalLM(MixtralConfig(**SMALL, num_local_experts=4,
                                                        num_experts_per_tok=2)),
}
PROMPTS = [list(np.random.default_rng(n).integers(0, 256, n)) for n in (3, 17, 9)]
NEW = 32


@pytest.fixture(scope="module", params=FAMILIES)
def family(request, tmp_path_factory):
    """(directory saved by transformers, transformers' greedy tokens for each prompt)."""
    torch.manual_seed(0)
    model = FAMILIES[request.param]().eval()
    directory = tmp_path_factory.mktemp(request.param)
    model.save_pretrained(directory)
    model.generation_config.eos_token_id = None  # exactly NEW tokens, as asked of ours below
    with torch.no_grad():
        expected = [model.generate(torch.tensor([prompt]), do_sample=False, max_new_tokens=NEW)[0, len(prompt):]
                    .tolist() for prompt in PROMPTS]
    return directory, expected


def test_greedy_tokens_equal_transformers_generate(family):
    directory, expected = family
    model = load(str(directory))
    generator = Generator(model.config, model.params, mesh=model.mesh)
    got = generator.generate([[int(t) for t in p] for p in PROMPTS], max_new_tokens=NEW,
                             sampling=Sampling())
    assert got == expected


TEXT = ("the cat sat on the mat. the dog sat on the log. a cat and a dog met on a mat by a log.\n"
        "they sat and sat; the end of the tale is that the cat and the dog are friends.\n")


@pytest.fixture(scope="module")
def with_tokenizer(tmp_path_factory):
    """A Llama saved by transformers beside a small byte-level BPE tokenizer.json (ids 0, 1, 2:
    <unk>, <s>, </s>, so transformers' default eos 2 is the tokenizer's </s>)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE(unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.train_from_iterator([TEXT], trainers.BpeTrainer(
        vocab_size=120, special_tokens=["<unk>", "<s>", "</s>"], show_progress=False))
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(**SMALL)).eval()  # vocab 256: padded past the tokenizer's
    directory = tmp_path_factory.mktemp("llama_tokenizer")
    model.save_pretrained(directory)
    tokenizer.save(str(directory / "tokenizer.json"))
    return directory, model, tokenizer


def test_generate_cli_on_a_hugging_face_directory(with_tokenizer):
    """Text in, text out through tokenizer.json, stopping at eos as transformers does."""
    directory, model, tokenizer = with_tokenizer
    prompt = "the dog sat"
    with torch.no_grad():
        ids = tokenizer.encode(prompt).ids
        out = model.generate(torch.tensor([ids]), do_sample=False, max_new_tokens=24)[0, len(ids):]
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    done = subprocess.run([str(Path(sys.executable).parent / "hydralearn-generate"), str(directory),
                           "--prompt", prompt, "--max-new-tokens", "24"],
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout == prompt + tokenizer.decode(out.tolist(), skip_special_tokens=True) + "\n"


def test_bits_per_byte_with_a_tokenizer(with_tokenizer, tmp_path):
    """Loss against transformers' own cross-entropy; bits per byte = loss / ln 2 * tokens / bytes
    with several bytes per token, the bytes being those after the (unpredicted) first token."""
    from hydralearn.runtime import evaluate

    directory, model, tokenizer = with_tokenizer
    (tmp_path / "tale.txt").write_text(TEXT)
    ids = tokenizer.encode(TEXT).ids
    with torch.no_grad():
        loss = float(model(torch.tensor([ids]), labels=torch.tensor([ids])).loss)  # shifted inside
    tokens = len(ids) - 1
    num_bytes = len(TEXT.encode()) - len(tokenizer.decode(ids[:1]).encode())
    assert num_bytes > 1.5 * tokens  # BPE merges: the two ratios differ
    got = evaluate.on_file(load(str(directory)), tmp_path / "tale.txt")
    assert (got.tokens, got.bytes) == (tokens, num_bytes)
    assert got.loss == pytest.approx(loss, rel=1e-5)
    assert got.bits_per_byte == pytest.approx(loss / math.log(2) * tokens / num_bytes, rel=1e-5)
