"""`hydralearn-diff A -- B`: what changed between two configs and what it costs.

Each side is Hydra overrides, a golden `tests/golden/<name>.config.yaml`, or a run directory:

    hydralearn-diff model=llama2_7b -- model=llama2_7b model/ffn=gelu
    hydralearn-diff tests/golden/tiny_cpu8.config.yaml -- runs/llama_tiny/2025-01-01_12-00-00
    hydralearn-diff --json +experiment=tiny_cpu8 -- +experiment=tiny_nope
    hydralearn-diff --config-dir my_conf model=mine -- model=mine model/ffn=gelu
    hydralearn-diff runs/baseline -- runs/wsd      # two finished runs: also their held-out
                                                   # loss, speed and goodput, A -> B

--config-dir DIR, -cn NAME and -cp DIR (as for hydralearn-train) apply to both sides.

Exit status (for CI): 0 identical, 1 they differ, 2 usage or config error.
"""

import dataclasses
import enum
import json
import sys

from hydralearn.cli.errors import exit_with
from hydralearn.errors import ConfigError
from hydralearn.exit_codes import DIFFER_EXIT, SUCCESS_EXIT, USER_ERROR_EXIT

USAGE = "usage: hydralearn-diff [--json] A... -- B...  (each side: overrides, a config file or a run directory)"


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in ("-h", "--help"):
        print(__doc__.strip())
        return
    as_json = "--json" in argv
    argv = [a for a in argv if a != "--json"]
    where, argv = _location(argv)
    if "--" not in argv:
        print(f"hydralearn: error: {USAGE}", file=sys.stderr)
        sys.exit(USER_ERROR_EXIT)
    split = argv.index("--")
    left, right = argv[:split], argv[split + 1:]
    try:
        from hydralearn.review.diff import diff, load_side
        result = diff(load_side(left, where), load_side(right, where))
    except ConfigError as e:
        exit_with(e)
    print(json.dumps(to_json(result), indent=2) if as_json else format_diff(result))
    sys.exit(SUCCESS_EXIT if result.identical else DIFFER_EXIT)


LOCATION_FLAGS = {"--config-dir": "config_dir", "-cd": "config_dir", "--config-name": "config_name",
                  "-cn": "config_name", "--config-path": "config_path", "-cp": "config_path"}


def _location(argv: list[str]):
    """The -cp/-cn/--config-dir flags (either side, `--flag value` or `--flag=value`), and the rest."""
    from hydralearn.config.compose import Location

    found, rest, i = {}, [], 0
    while i < len(argv):
        flag, _, value = argv[i].partition("=")
        if flag in LOCATION_FLAGS and (value or i + 1 < len(argv)):
            found[LOCATION_FLAGS[flag]] = value or argv[i + 1]
            i += 1 if value else 2
            continue
        rest.append(argv[i])
        i += 1
    return Location(**found), rest


def to_json(result) -> dict:
    def plain(value):
        if isinstance(value, enum.Enum):
            return value.value
        if isinstance(value, tuple):
            return [plain(v) for v in value]
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        return value
    out = plain(dataclasses.asdict(result))
    out["identical"] = result.identical
    return out


def format_diff(result) -> str:
    lines = [f"A: {result.a}", f"B: {result.b}"]
    if result.identical:
        return "\n".join(lines + ["identical: no key differs"] + _outcome_lines(result.outcomes))
    lines.append(f"changed keys ({len(result.changes)})")
    group = None
    for c in result.changes:
        if c.group != group:
            group = c.group
            lines.append(f"  {group}")
        mark = {"added": "+", "removed": "-", "changed": "~"}[c.kind]
        values = (repr(c.new) if c.kind == "added" else repr(c.old) if c.kind == "removed"
                  else f"{c.old!r} -> {c.new!r}")
        lines.append(f"    {mark} {c.key}: {values}  [{c.effect.value}]")
    if result.deltas:
        lines.append("derived numbers (A -> B)")
        width = max(len(d.name) for d in result.deltas)
        lines += [f"  {d.name:<{width}}  {_delta_text(d)}" for d in result.deltas]
    verdict = "can" if result.resume.possible else "cannot"
    lines.append(f"resume: a checkpoint of A {verdict} be resumed as B: {result.resume.reason}")
    return "\n".join(lines + _outcome_lines(result.outcomes))


def _outcome_lines(outcomes) -> list[str]:
    """Both runs' summary.json figures (A -> B), whether their configs differ or not."""
    if not outcomes:
        return []
    width = max(len(d.name) for d in outcomes)
    return ["run outcomes (A -> B, from summary.json)"] + [
        f"  {d.name:<{width}}  {_delta_text(d)}" for d in outcomes]


def _delta_text(d) -> str:
    if isinstance(d.old, str):
        return f"{d.old} -> {d.new}"
    change = d.new - d.old
    ratio = f", x{d.new / d.old:.3g}" if d.old else ""
    num = _bytes if d.name.endswith("_bytes") else _num
    return f"{num(d.old)} -> {num(d.new)} ({'+' if change >= 0 else '-'}{num(abs(change))}{ratio})"


def _num(x: float) -> str:
    if abs(x) >= 1e4 or (x and abs(x) < 1e-2):
        return f"{x:.4g}"
    return f"{x:,.4g}"


def _bytes(x: float) -> str:
    return f"{x / 2**30:.3f} GiB" if x >= 2**30 / 100 else f"{x / 2**20:.2f} MiB"


if __name__ == "__main__":
    main()
