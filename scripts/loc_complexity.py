"""LoC-complexity (AXLearn): what it costs, in lines, to switch a feature on for every preset.

For each feature (a `model/position` or `model/ffn` option) this measures, from the files:
- own lines: its layer module (its schema's `_target_`), its schema module (the `*_config.py`
  its YAML extends) and its YAML;
- lines elsewhere: lines of the model-building code (src/layers, src/compose) outside its own
  module, and of the presets' bodies, that name the feature (its option, module or class);
- per-preset lines: override lines beyond the single `model/<group>=<option>` needed for each
  preset to compose and validate (0 when it does; "fails" when it does not);
- presets: how many presets it composed and validated on.
The promise holds when the last three columns are 0, 0 and all, whatever the number of presets.

    .venv/bin/python scripts/loc_complexity.py [--build]   # --build: also build each abstractly
"""

import argparse
import ast
import dataclasses
import re
import sys
import tokenize
from pathlib import Path

from omegaconf import OmegaConf

from hydralearn.compose import config as compose_config
from hydralearn.compose.store import register_schemas
from hydralearn.layers import registry

REPO = Path(__file__).resolve().parent.parent
FEATURES = {"position": ["rope", "rope_llama3", "yarn", "rope_linear", "none"], "ffn": ["moe"]}


@dataclasses.dataclass(frozen=True)
class Row:
    feature: str
    override: str
    own_lines: int
    lines_elsewhere: int
    per_preset_lines: int | None  # None: some preset fails with the single override
    presets_ok: int
    presets: int


def own_files(repo: Path, group: str, option: str) -> tuple[Path, ...]:
    """The option's YAML, its schema's module and its layer's module."""
    yaml_file = repo / "conf" / "model" / group / f"{option}.yaml"
    config_cls = schema_class(repo, group, option)
    target = registry.default_target(config_cls)
    layer = repo / "src" / (target.rsplit(".", 1)[0].removeprefix("hydralearn.").replace(".", "/") + ".py")
    schema = repo / "src" / (config_cls.__module__.removeprefix("hydralearn.").replace(".", "/") + ".py")
    return (yaml_file, schema, layer)


def schema_class(repo: Path, group: str, option: str) -> type:
    """The registered schema an option extends, following its defaults list (`moe_qwen3`
    extends `moe`, which extends `base_moe`)."""
    register_schemas()
    first = str(OmegaConf.load(repo / "conf" / "model" / group / f"{option}.yaml").defaults[0])
    if not first.startswith("base_"):
        return schema_class(repo, group, first)
    places = {place: cls for cls, place in registry.places().items()}
    return places[(f"model/{group}", first.removeprefix("base_"))]


def lines_naming(repo: Path, conf: Path, group: str, option: str, exclude: set[Path]) -> int:
    """Lines of model-building code (outside every feature's own module) that name the feature
    in code (its class, or a string holding its module path), plus
    lines of preset bodies that name its option."""
    _, schema, module = own_files(repo, group, option)
    classes = {c for f in (schema, module) for c in re.findall(r"^class (\w+)\(", f.read_text(), re.M)}
    dotted = "hydralearn." + str(module.relative_to(repo / "src").with_suffix("")).replace("/", ".")
    code = [p for d in ("layers", "compose") for p in (repo / "src" / d).rglob("*.py") if p not in exclude]
    count = sum(_code_lines_naming(p, classes, dotted) for p in code)
    for preset in (conf / "model").glob("*.yaml"):
        for line in preset.read_text().splitlines():
            text = line.split("#", 1)[0]
            # A preset choosing its default option in its defaults list is not an edit to enable it.
            if not re.match(rf"\s*-\s*{group}:", text) and re.search(rf"\b{re.escape(option)}\b", text):
                count += 1
    return count


def _code_lines_naming(path: Path, classes: set[str], dotted: str) -> int:
    """Lines whose tokens name a class, or whose (non-docstring) strings hold the module path."""
    lines = set()
    with path.open("rb") as f:
        for tok in tokenize.tokenize(f.readline):
            if tok.type == tokenize.NAME and tok.string in classes:
                lines.add(tok.start[0])
            elif tok.type == tokenize.STRING and not tok.string.endswith(('"' * 3, "'" * 3)):
                value = str(ast.literal_eval(tok.string)) if tok.string[0] in "'\"" else ""
                if dotted in value:
                    lines.add(tok.start[0])
    return len(lines)


def composes(conf: Path, preset: str, override: str, build: bool) -> bool:
    """Whether `model=<preset> <override>` composes and validates (and builds, with `build`);
    the reason for a failure goes to stderr."""
    try:
        config = compose_config.load([f"model={preset}", override],
                                     compose_config.Location(config_path=str(conf)))
        if build:
            from hydralearn.compose.build import abstract_params
            from hydralearn.compose.resolve import resolve
            abstract_params(resolve(config, device_count=1))
        return True
    except Exception as e:  # noqa: BLE001 - any failure means the override is not enough
        print(f"model={preset} {override}: {str(e).splitlines()[0] if str(e) else type(e).__name__}",
              file=sys.stderr)
        return False


def measure(repo: Path = REPO, conf: Path | None = None, *, build: bool = False,
            features: dict[str, list[str]] = FEATURES) -> list[Row]:
    """One row per feature; `conf` (default repo/conf) is where presets are looked up."""
    conf = conf or repo / "conf"
    presets = sorted(p.stem for p in (conf / "model").glob("*.yaml"))
    everyones = {f for g, opts in FEATURES.items() for o in opts for f in own_files(repo, g, o)}
    rows = []
    for group, options in features.items():
        for option in options:
            own = own_files(repo, group, option)
            override = f"model/{group}={option}"
            ok = sum(composes(conf, p, override, build) for p in presets)
            rows.append(Row(feature=option, override=override,
                            own_lines=sum(len(f.read_text().splitlines()) for f in own),
                            lines_elsewhere=lines_naming(repo, conf, group, option, everyones),
                            per_preset_lines=0 if ok == len(presets) else None,
                            presets_ok=ok, presets=len(presets)))
    return rows


def table(rows: list[Row]) -> str:
    head = ("feature", "override", "own lines", "lines elsewhere", "per-preset lines", "presets")
    body = [(r.feature, r.override, str(r.own_lines), str(r.lines_elsewhere),
             "fails" if r.per_preset_lines is None else str(r.per_preset_lines),
             f"{r.presets_ok}/{r.presets}") for r in rows]
    widths = [max(len(x) for x in col) for col in zip(head, *body)]
    fmt = lambda cells: "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths)) + " |"  # noqa: E731
    return "\n".join([fmt(head), fmt(["-" * w for w in widths]), *map(fmt, body)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build", action="store_true", help="also build every combination abstractly")
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))
    print(table(measure(build=args.build)))


if __name__ == "__main__":
    main()
