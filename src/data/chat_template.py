"""Chat templates: Jinja text that turns a conversation into the one string a model sees.

A template is rendered in the environment Hugging Face transformers uses for
`apply_chat_template`, so a tokenizer's own `chat_template` renders here exactly as it does
there: a sandboxed, immutable Jinja environment with trim_blocks and lstrip_blocks, the
loop-control extension, `raise_exception(msg)` and `strftime_now(fmt)` as globals, a `tojson`
filter that does not escape HTML, and a `{% generation %} ... {% endgeneration %}` block that
marks what the assistant generates. Variables: `messages`, `add_generation_prompt`, and the
tokenizer's special-token names (`bos_token`, `eos_token`, ...).

Where a template has generation blocks, the assistant's spans are theirs. Where it has none
(Llama 3's and Qwen2.5's published templates), a span is found by rendering the conversation
prefix by prefix: the assistant's turn i is what `messages[:i+1]` adds to `messages[:i]`
rendered with the generation prompt, its trailing whitespace left out.
"""

import dataclasses
import datetime
import functools
import json
import re
from pathlib import Path

# Private-use characters that bracket a generation block's output while rendering; removed
# from the text afterwards, their places are the spans.
_OPEN, _CLOSE = "\ue000", "\ue001"
_GENERATION = re.compile(r"\{%-?\s*generation\s*-?%\}")
# Special tokens a template spells literally, in the common `<|name|>` form: each must be one
# token of the tokenizer, or the model would see it as a run of text pieces.
_SPECIAL = re.compile(r"<\|[A-Za-z0-9_.-]+\|>")


@functools.cache
def _environment():
    """The Jinja environment, made once (jinja2 is imported only by runs that render chats)."""
    import jinja2
    import jinja2.ext
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    class Generation(jinja2.ext.Extension):
        """`{% generation %}...{% endgeneration %}`: its output, bracketed by the markers."""

        tags = {"generation"}

        def parse(self, parser):
            lineno = next(parser.stream).lineno
            body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
            return jinja2.nodes.CallBlock(self.call_method("_mark"), [], [], body).set_lineno(lineno)

        def _mark(self, caller) -> str:
            return _OPEN + caller() + _CLOSE

    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    def tojson(value, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(value, ensure_ascii=ensure_ascii, indent=indent, separators=separators,
                          sort_keys=sort_keys)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=[Generation, jinja2.ext.loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = lambda fmt: datetime.datetime.now().strftime(fmt)
    return env


@dataclasses.dataclass(frozen=True)
class Builtin:
    source: str
    special_tokens: tuple[str, ...]  # must be single tokens of the tokenizer
    end_of_turn: str  # what ends an assistant turn: generation stops there


# Written for hydralearn in the published formats (ChatML; Llama 3's header/eot format).
BUILTINS: dict[str, Builtin] = {
    "chatml": Builtin(
        source="{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\n' + m['content'] + "
               "'<|im_end|>' + '\n' }}{% endfor %}"
               "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}",
        special_tokens=("<|im_start|>", "<|im_end|>"), end_of_turn="<|im_end|>"),
    "llama3": Builtin(
        source="{{ '<|begin_of_text|>' }}{% for m in messages %}{{ '<|start_header_id|>' + "
               "m['role'] + '<|end_header_id|>\n\n' + m['content'] + '<|eot_id|>' }}{% endfor %}"
               "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}"
               "{% endif %}",
        special_tokens=("<|begin_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"),
        end_of_turn="<|eot_id|>"),
}


class TemplateError(ValueError):
    """The template does not render this conversation (its own raise_exception included)."""


@dataclasses.dataclass(frozen=True)
class Rendered:
    text: str
    spans: tuple[tuple[int, int], ...]  # [start, end) character ranges of assistant turns


class ChatTemplate:
    """A compiled template and the special-token names it is rendered with."""

    def __init__(self, source: str, *, name: str, variables: dict | None = None,
                 special_tokens: tuple[str, ...] = (), end_of_turn: str | None = None):
        self.source, self.name = source, name
        self.variables = dict(variables or {})
        self.special_tokens = special_tokens or tuple(sorted(set(_SPECIAL.findall(source))))
        self.end_of_turn = end_of_turn
        self.has_generation_blocks = bool(_GENERATION.search(source))
        from jinja2.exceptions import TemplateSyntaxError

        try:
            self._template = _environment().from_string(source)
        except TemplateSyntaxError as e:
            raise TemplateError(f"chat template {name} is not valid Jinja (line {e.lineno}: {e.message})") from None

    def render(self, messages: list[dict], *, add_generation_prompt: bool = False) -> str:
        return self._render(messages, add_generation_prompt).replace(_OPEN, "").replace(_CLOSE, "")

    def _render(self, messages: list[dict], add_generation_prompt: bool) -> str:
        from jinja2.exceptions import TemplateError as JinjaError

        try:
            return self._template.render(messages=messages, add_generation_prompt=add_generation_prompt,
                                         **self.variables)
        except JinjaError as e:
            raise TemplateError(f"chat template {self.name} does not render it ({e})") from None
        except Exception as e:  # noqa: BLE001 - a template may fail in any way a user's code can
            raise TemplateError(f"chat template {self.name} does not render it "
                                f"({type(e).__name__}: {e})") from None

    def assistant_spans(self, messages: list[dict]) -> Rendered:
        """The conversation rendered, with the character span of every assistant turn."""
        if self.has_generation_blocks:
            return _marked(self._render(messages, False))
        text = self.render(messages)
        spans = []
        for i, message in enumerate(messages):
            if message["role"] != "assistant":
                continue
            before = self.render(messages[:i], add_generation_prompt=True)
            upto = self.render(messages[:i + 1])
            if not (text.startswith(before) and text.startswith(upto) and len(upto) >= len(before)):
                raise TemplateError(
                    f"chat template {self.name} renders a conversation differently from its prefixes "
                    "(it rewrites earlier turns), so the assistant's tokens cannot be found: use a "
                    "template with {% generation %} blocks, or data.template=chatml|llama3|<file>")
            spans.append((len(before), max(len(before), len(upto.rstrip()))))
        return Rendered(text=text, spans=tuple(spans))


def _marked(raw: str) -> Rendered:
    """Text with generation markers -> (text without them, the spans they bracketed)."""
    spans, out, depth, start = [], [], 0, 0
    length = 0
    for piece in re.split(f"([{_OPEN}{_CLOSE}])", raw):
        if piece == _OPEN:
            depth, start = depth + 1, length if depth == 0 else start
        elif piece == _CLOSE:
            depth -= 1
            if depth == 0 and length > start:
                spans.append((start, length))
        else:
            out.append(piece)
            length += len(piece)
    return Rendered(text="".join(out), spans=tuple(spans))


def load_template(choice: str, *, tokenizer_template: str | None, variables: dict,
                  where: str) -> ChatTemplate:
    """`choice`: "tokenizer" (the tokenizer's own chat_template), a built-in name, or a file.
    `where` names the tokenizer in messages. TemplateError (one line) if none is found."""
    if choice == "tokenizer":
        if not tokenizer_template:
            raise TemplateError(f"the tokenizer ({where}) has no chat_template in tokenizer_config.json: "
                                f"choose data.template={'|'.join(BUILTINS)}|<template file>")
        return ChatTemplate(tokenizer_template, name=f"of the tokenizer ({where})", variables=variables)
    if choice in BUILTINS:
        builtin = BUILTINS[choice]
        return ChatTemplate(builtin.source, name=choice, variables=variables,
                            special_tokens=builtin.special_tokens, end_of_turn=builtin.end_of_turn)
    path = Path(choice).expanduser()
    if not path.is_file():
        raise TemplateError(f"data.template={choice}: neither 'tokenizer', a built-in "
                            f"({', '.join(BUILTINS)}) nor a template file")
    return ChatTemplate(path.read_text(encoding="utf-8"), name=str(path), variables=variables)

