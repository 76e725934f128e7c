"""Chat and instruction records -> tokens and the loss mask (data=chat, objective=sft).

A record is a conversation (`messages`: role/content dicts; roles system, user, assistant;
at least one assistant turn) or a prompt/completion pair. A conversation is rendered with the
run's chat template and tokenized as transformers' `apply_chat_template` tokenizes it (the
special tokens it spells are special tokens; the template places BOS itself); a token is a
target when its characters overlap an assistant span (data/chat_template.py) chosen by
`data.loss_mask`. A prompt/completion pair is `[BOS] + prompt + completion + [EOS]`, its
targets the completion and EOS.

A conversation longer than a row (seq_len + 1 tokens) loses its oldest turns until it fits
(`data.overlong=truncate_left`; a system turn stays, the history restarts at a user turn) or
is left out (`drop`); one with no target left is left out either way: no row is ever made
of context alone.
"""

import dataclasses

import numpy as np

from hydralearn.data.chat_template import BUILTINS, ChatTemplate, TemplateError, load_template
from hydralearn.data.config import ChatData, ChatFormat, LossMask, Overlong
from hydralearn.data.tokenizer import Tokenizer
from hydralearn.data.tokenizer_config import TokenizerKind
from hydralearn.errors import ConfigError

ROLES = ("system", "user", "assistant")


class BadRecord(ValueError):
    """What is wrong with one record, in words (the caller adds file and record)."""


@dataclasses.dataclass(frozen=True)
class Example:
    """One record made ready to train on: tokens, and which of them are targets."""

    tokens: np.ndarray  # (N,) int32
    targets: np.ndarray  # (N,) bool: token i is predicted (from token i - 1) and counts in the loss


def conversation(record, config: ChatData) -> list[dict]:
    """The record's messages as plain dicts, checked; BadRecord naming the problem."""
    if config.format is ChatFormat.prompt_completion:
        pair = [record.get(k) if isinstance(record, dict) else None
                for k in (config.prompt_key, config.completion_key)]
        for key, value in zip((config.prompt_key, config.completion_key), pair):
            if not isinstance(value, str) or (key == config.completion_key and not value):
                raise BadRecord(f"no {key!r} string" + ("" if value is None else " (empty or not text)"))
        return [{"role": "user", "content": pair[0]}, {"role": "assistant", "content": pair[1]}]
    messages = record.get(config.messages_key) if isinstance(record, dict) else None
    if not isinstance(messages, list) or not messages:
        raise BadRecord(f"no {config.messages_key!r} list of messages")
    out = []
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or not isinstance(m.get("content"), str):
            raise BadRecord(f"message {i} is not a {{'role', 'content'}} pair with text content")
        if m.get("role") not in ROLES:
            raise BadRecord(f"message {i} has the unknown role {m.get('role')!r} (roles: {', '.join(ROLES)})")
        out.append({"role": m["role"], "content": m["content"]})
    if not any(m["role"] == "assistant" for m in out):
        raise BadRecord("the conversation has no assistant turn: nothing to learn from")
    return out


class ChatEncoder:
    """Records -> Examples for one data config and tokenizer; safe to share across threads."""

    def __init__(self, config: ChatData, tokenizer: Tokenizer, *, where: str):
        self.config, self.tokenizer = config, tokenizer
        self.max_tokens = config.seq_len + 1
        self.template: ChatTemplate | None = None
        if config.format is ChatFormat.messages:
            try:
                self.template = load_template(config.template, tokenizer_template=tokenizer.chat_template,
                                              variables=tokenizer.special_names, where=where)
            except TemplateError as e:
                raise ConfigError([f"data.template: {e}"]) from None
            missing_tokens(self.template, tokenizer)

    def start(self, messages: list[dict]) -> int | None:
        """Where the kept history starts (0: all of it), or None if the record is left out:
        the conversation does not fit and cannot be cut (or data.overlong=drop)."""
        if self.template is None:
            return 0 if len(self._pair(messages).tokens) <= self.max_tokens else None
        starts = [0] if self.config.overlong is Overlong.drop else _cut_points(messages)
        for start in starts:
            kept = _from(messages, start)
            if len(self.tokenizer.encode_rendered(self.template.render(kept))[0]) <= self.max_tokens:
                return start
        return None

    def example(self, messages: list[dict], start: int = 0) -> Example:
        if self.template is None:
            return self._pair(messages)
        kept = _from(messages, start)
        rendered = self.template.assistant_spans(kept)
        ids, offsets = self.tokenizer.encode_rendered(rendered.text)
        spans = rendered.spans
        if self.config.loss_mask is LossMask.last_turn:
            spans = spans[-1:]
        elif self.config.loss_mask is LossMask.all:
            spans = ((0, len(rendered.text)),)
        return Example(tokens=np.asarray(ids, np.int32), targets=token_mask(offsets, spans))

    def prompt(self, messages: list[dict]) -> list[int]:
        """Token ids of a conversation to be answered: rendered with the generation prompt,
        tokenized as in training (what the model sees before the assistant's first token)."""
        if self.template is None:  # prompt/completion data: the prompt as trained on
            return self.tokenizer.wrap(self.tokenizer.encode(messages[-1]["content"]))[:-1]
        return self.tokenizer.encode_rendered(self.template.render(messages, add_generation_prompt=True))[0]

    @property
    def end_of_turn(self) -> str | None:
        """What ends an assistant turn: a built-in's end token, else the tokenizer's EOS name."""
        if self.template is None:
            return None
        return self.template.end_of_turn or self.tokenizer.special_names.get("eos_token")

    def _pair(self, messages: list[dict]) -> Example:
        # Prompt and completion tokenized apart, so the boundary between them is exact.
        prompt = self.tokenizer.wrap(self.tokenizer.encode(messages[0]["content"]))[:-1]
        completion = self.tokenizer.encode(messages[1]["content"]) + [self.tokenizer.eos_id]
        targets = np.zeros(len(prompt) + len(completion), bool)
        targets[len(prompt):] = True
        return Example(tokens=np.asarray(prompt + completion, np.int32), targets=targets)


def token_mask(offsets: list[tuple[int, int]], spans) -> np.ndarray:
    """(N,) bool: tokens whose characters overlap a span (as transformers' char_to_token maps
    a span's first and last characters to tokens and takes those between)."""
    starts = np.array([o[0] for o in offsets], np.int64).reshape(-1)
    ends = np.array([o[1] for o in offsets], np.int64).reshape(-1)
    mask = np.zeros(len(offsets), bool)
    for begin, end in spans:
        mask |= (starts < end) & (ends > begin) & (ends > starts)
    return mask


def missing_tokens(template: ChatTemplate, tokenizer: Tokenizer) -> None:
    """ConfigError (one line) naming the template's special tokens the tokenizer lacks. The byte
    tokenizer has no special tokens: it spells them as bytes."""
    if tokenizer.kind is TokenizerKind.byte:
        return
    missing = [t for t in template.special_tokens if tokenizer.token_id(t) is None]
    if missing:
        raise ConfigError([f"data.template={template.name}: the tokenizer has no token "
                           f"{', '.join(missing)}; use the template the tokenizer was trained with "
                           f"(data.template=tokenizer) or one whose tokens it has "
                           f"({', '.join(n for n, b in BUILTINS.items())})"])


def _cut_points(messages: list[dict]) -> list[int]:
    """Where a truncated history may start: 0, then each later user turn (never past the last
    assistant turn). A leading system turn is kept by `_from`."""
    last = max(i for i, m in enumerate(messages) if m["role"] == "assistant")
    return [0] + [i for i, m in enumerate(messages) if 0 < i < last and m["role"] == "user"]


def _from(messages: list[dict], start: int) -> list[dict]:
    if start == 0:
        return messages
    system = messages[:1] if messages[0]["role"] == "system" else []
    return system + messages[start:]
