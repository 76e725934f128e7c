"""Every `hydralearn-*` command in README.md and docs/ is accepted by its tool, so an example that
the tools refuse fails CI. The commands are read from the markdown code blocks and checked in
this process with the functions the tools run before any work (argument parsing, composition,
validation, sweep expansion), not by spawning a process per command. An example documented
with its `hydralearn: error:` lines must be refused with exactly those lines. A command that
needs what a test cannot have here is listed in UNCHECKED with the reason."""

import re
import shlex
import sys
from pathlib import Path

import pytest

from hydralearn.cli import eval as eval_cli
from hydralearn.cli import generate, hydra_args, k8s, plan, tokenize
from hydralearn.config import compose as compose_config
from hydralearn.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
COMMAND = re.compile(r"^(?:[A-Z_]+=\S+ )*(?:srun )?(hydralearn-[a-z0-9]+)\b(.*)$")

# (file, the command's start) -> why it is not checked here.
UNCHECKED = {
    ("docs/runtime.md", "hydralearn-train model.d_model=48"):
        "shows the refusal of a resume: needs a run directory holding checkpoints",
    ("docs/finetune.md", "hydralearn-train model=llama3_2_1b init.hf=/ckpt/tiny-llama"):
        "shows the refusals of a Hugging Face directory's config.json: tests/interop checks them",
    ("docs/data.md", "hydralearn-train name=mine data=tokens"):
        "needs shards written by hydralearn-tokenize (tests/data trains from them)",
    ("README.md", "hydralearn-train data=tokens"):
        "needs shards written by hydralearn-tokenize (tests/data trains from them)",
    ("docs/data.md", "hydralearn-train --config-dir my_conf data=web_code"):
        "the user's own data option, not shipped",
    ("README.md", "hydralearn-train objective=sft data=chat"):
        "needs a Hugging Face base directory and chat data: tests/data/test_chat_learns.py trains one",
    ("docs/posttrain.md", "hydralearn-train objective=sft data=chat"):
        "needs a Hugging Face base directory and chat data: tests/data/test_chat_learns.py trains one",
    ("docs/plugins.md", "PYTHONPATH=. hydralearn-train"): "a plugin package: tests/plugins runs it",
    ("docs/plugins.md", "hydralearn-train model/ffn=relu2"): "a plugin package: tests/plugins runs it",
    ("docs/plugins.md", "hydralearn-plan model/ffn=relu2"): "a plugin package: tests/plugins runs it",
    ("docs/plugins.md", "hydralearn-diff model=llama3_8b -- model=llama3_8b model/ffn=relu2"):
        "a plugin package: tests/plugins runs it",
}
# Commands that read a trained run or a Hugging Face directory: their arguments are parsed and
# their overrides composed, but the directory is not there.
NEEDS_A_RUN = ("hydralearn-generate", "hydralearn-eval", "hydralearn-export")


def doc_commands() -> list[tuple[str, int, str, list[str]]]:
    """(file, line, command, documented error lines) of every hydralearn-* command in a code
    block (fenced or indented), continuation lines joined."""
    found = []
    for path in DOCS:
        lines, fenced, code = path.read_text().splitlines(), False, []
        for line in lines:
            if line.strip().startswith("```"):
                fenced = not fenced
                code.append(None)
            else:
                code.append(line if fenced or line.startswith("    ") else None)
        i = 0
        while i < len(code):
            text, start = (code[i] or "").strip().removeprefix("$ "), i
            while text.endswith("\\") and i + 1 < len(code) and code[i + 1] is not None:
                i += 1
                text = text[:-1] + " " + code[i].strip()
            errors = []
            while i + 1 < len(code) and (code[i + 1] or "").strip().startswith("hydralearn: error: "):
                i += 1
                errors.append(code[i].strip())
            if COMMAND.match(text):
                found.append((str(path.relative_to(REPO)), start + 1, text, errors))
            i += 1
    return found


def words(command: str) -> tuple[str, list[str]]:
    """The tool and its arguments as a shell passes them; a placeholder (`...`), a redirection
    and the comment are dropped, `<image>` stands for an image."""
    tool, rest = COMMAND.match(command).groups()
    argv = shlex.split(rest.replace("<image>", "registry.example.com/hydralearn:0.1"), comments=True)
    if ">" in argv:
        argv = argv[:argv.index(">")]
    return tool, [a for a in argv if a != "..."]


def check(tool: str, argv: list[str], capsys, monkeypatch) -> None:
    """What the tool runs before any work; ConfigError (or SystemExit from argparse) if refused."""
    if tool == "hydralearn-train":
        args = hydra_args.parse(argv)
        hydra_args.check_modes(args)
        where = hydra_args.location(args)
        points = hydra_args.sweep_points(args.overrides, where) if args.multirun else [args.overrides]
        for point in points:
            compose_config.load(point, where)
    elif tool == "hydralearn-plan":
        args = plan.parse(argv)
        compose_config.load(args.overrides, hydra_args.location(args))
    elif tool == "hydralearn-diff":
        split = argv.index("--")
        for side in (argv[:split], argv[split + 1:]):
            if len(side) == 1 and "=" not in side[0]:
                assert (REPO / side[0]).exists() or side[0].startswith("runs/"), side
            else:
                compose_config.load(side)
    elif tool == "hydralearn-tokenize":
        args = tokenize.parse(argv)
        tokenize.data_config(args.overrides, hydra_args.location(args))
    elif tool == "hydralearn-k8s":
        monkeypatch.setattr(sys, "argv", [tool, *argv])
        k8s.main()
        assert "kind: JobSet" in capsys.readouterr().out
    elif tool == "hydralearn-schema":
        from hydralearn.cli import schema

        schema.main(argv)
        capsys.readouterr()
    elif tool == "hydralearn-eval":
        args = eval_cli.parse(argv)
        if args.overrides:
            compose_config.compose(args.overrides)
    elif tool == "hydralearn-generate":
        generate.parse(argv)
    elif tool == "hydralearn-export":
        assert "--to" in argv  # its parser is inside main, which reads the run
    else:
        raise AssertionError(f"{tool}: no check for this tool; add one")


def _the_docs_files(root: Path) -> None:
    """What the examples name: the user's config directory that docs/config.md describes, a
    corpus, books and a tokenizer directory."""
    from tokenizers import Tokenizer, models

    (root / "my_conf" / "model").mkdir(parents=True)
    for preset in ("my_tiny", "my_preset"):
        (root / "my_conf" / "model" / f"{preset}.yaml").write_text("defaults: [llama_tiny, _self_]\nd_model: 128\n")
    (root / "my_conf" / "my_train.yaml").write_text("defaults: [train, {override model: my_tiny}, _self_]\nname: mine\n")
    (root / "corpus").mkdir()
    (root / "corpus" / "a.jsonl").write_text('{"text": "one document"}\n')
    (root / "books" / "shelf").mkdir(parents=True)
    (root / "books" / "shelf" / "a.txt").write_text("a book\n")
    (root / "tok").mkdir()
    Tokenizer(models.WordLevel({"<unk>": 0, "</s>": 1, "a": 2}, unk_token="<unk>")).save(str(root / "tok" / "tokenizer.json"))


@pytest.mark.slow  # composes and validates ~120 commands: ~45 s of CPU
def test_every_documented_command_is_accepted(tmp_path, capsys, monkeypatch):
    _the_docs_files(tmp_path)
    monkeypatch.chdir(tmp_path)
    commands, checked, refused = doc_commands(), 0, []
    assert len(commands) > 100  # the extraction finds them
    for path, line, command, documented in commands:
        if any(path == p and command.startswith(c) for p, c in UNCHECKED):
            continue
        tool, argv = words(command)
        try:
            check(tool, argv, capsys, monkeypatch)
            got = []
        except ConfigError as e:
            got = [f"hydralearn: error: {e}" for e in e.errors]
        except SystemExit as e:  # argparse's refusal
            got = [f"exit {e.code}: {capsys.readouterr().err.strip()}"]
        checked += 1
        matches = [re.fullmatch(re.escape(d).replace(re.escape("..."), ".*"), g) for d, g in zip(documented, got)]
        if len(got) != len(documented) or not all(matches):
            refused.append(f"{path}:{line}: {command}\n    documented: {documented}\n    got: {got}")
    assert not refused, "\n".join(refused)
    assert checked >= len(commands) - len(UNCHECKED) - 2


def test_every_documented_command_parses(capsys):
    """The cheap part, in the default tier: each tool's arguments parse, and so does every
    override in Hydra's grammar (the slow test above composes and validates them)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    problems = []
    for path, line, command, _ in doc_commands():
        if any(path == p and command.startswith(c) for p, c in UNCHECKED):
            continue
        tool, argv = words(command)
        parse = {"hydralearn-train": hydra_args.parse, "hydralearn-plan": plan.parse,
                 "hydralearn-tokenize": tokenize.parse, "hydralearn-eval": eval_cli.parse,
                 "hydralearn-generate": generate.parse}.get(tool)
        try:
            overrides = parse(argv).overrides if parse and tool != "hydralearn-generate" else \
                [a for a in argv if "=" in a and not a.startswith("-")]
            if parse is generate.parse:
                parse(argv)
            OverridesParser.create().parse_overrides(overrides)
        except SystemExit:
            problems.append(f"{path}:{line}: {command}: {capsys.readouterr().err.strip()}")
        except Exception as e:  # Hydra's OverrideParseException
            problems.append(f"{path}:{line}: {command}: {e}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("where", sorted({p for p, _ in UNCHECKED}))
def test_each_unchecked_command_is_still_in_the_docs(where):
    """An entry of UNCHECKED whose command left the docs is stale: remove it."""
    starts = {c for p, c in UNCHECKED if p == where}
    present = {c for c in starts for p, _, text, _ in doc_commands() if p == where and text.startswith(c)}
    assert present == starts


def test_the_documented_explain_output_is_what_the_tool_prints(capsys):
    """docs/tooling.md shows `hydralearn-plan --explain` with its output: the tool's own."""
    lines = (REPO / "docs" / "tooling.md").read_text().splitlines()
    shown = [i for i, line in enumerate(lines) if line.strip().startswith("$ hydralearn-plan --explain")]
    assert shown
    for i in shown:
        documented = []
        for line in lines[i + 1:]:
            if not line.startswith("    ") or line.strip().startswith("$ "):
                break
            documented.append(line[4:])
        plan.main(words(lines[i].strip().removeprefix("$ "))[1])
        assert capsys.readouterr().out.splitlines() == documented, lines[i]
