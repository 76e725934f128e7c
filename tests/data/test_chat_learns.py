"""It learns: SFT on a tiny synthetic chat task (a word -> its fixed answer, in ChatML), a short
real run of hydralearn-train, then greedy hydralearn-generate on the rendered prompt answers in
the assistant format: the right word, then the end-of-turn token; `--chat` renders the same
prompt with the run's template and stops there."""

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

ANSWERS = {"red": "apple", "yellow": "banana", "green": "lime", "purple": "grape"}


def _tool(name: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    return subprocess.run([str(Path(sys.executable).parent / name), *args], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_sft_answers_in_the_assistant_format(tmp_path):
    rng = random.Random(0)
    with open(tmp_path / "chats.jsonl", "w") as f:
        for _ in range(400):
            word = rng.choice(sorted(ANSWERS))
            f.write(json.dumps({"messages": [{"role": "system", "content": "Name the fruit."},
                                             {"role": "user", "content": word},
                                             {"role": "assistant", "content": ANSWERS[word]}]}) + "\n")
    train = _tool("hydralearn-train", "objective=sft", "data=chat", "data.paths=[chats.jsonl]",
                  "data.template=chatml", "data.seq_len=128", "data.batch_size=16", "model.d_model=64",
                  "model.num_layers=2", "model.num_heads=4", "model.num_kv_heads=2", "model.ffn_dim=128",
                  "trainer.steps=150", "optim.lr=3e-3", "schedule.warmup_steps=10", "name=sft",
                  "hydra.run.dir=run", cwd=tmp_path)
    assert train.returncode == 0, train.stderr[-2000:]
    word, answer = "red", ANSWERS["red"]
    prompt = (f"<|im_start|>system\nName the fruit.<|im_end|>\n<|im_start|>user\n{word}<|im_end|>\n"
              "<|im_start|>assistant\n")
    out = _tool("hydralearn-generate", "run", "--prompt", prompt, "--max-new-tokens", "20", cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.startswith(prompt + f"{answer}<|im_end|>"), out.stdout[-300:]
    (tmp_path / "words.txt").write_text("\n".join(ANSWERS) + "\n")
    out = _tool("hydralearn-generate", "run", "--chat", "--system", "Name the fruit.", "--prompts-file",
                "words.txt", "--max-new-tokens", "20", cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    for i, (word, answer) in enumerate(ANSWERS.items()):  # each answer ends at <|im_end|>
        assert f"--- {i + 1} ---\n{word}{answer}\n" in out.stdout + "\n", out.stdout
