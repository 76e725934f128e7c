"""LoC-complexity (AXLearn): what it costs, in lines, to switch a feature on for every preset.

For each feature (a `model/position`, `model/ffn`, `model/adapter` or `model/attention` option)
this measures, from the files:
- own lines: its layer module (its schema's `_target_`), its schema module (the `*_config.py`
  its YAML extends) and its YAML;
- lines elsewhere: lines of the model-building code (src/layers, src/compose) outside its own
  module, and of the presets' bodies, that name the feature (its option, module or class);
  for a plugin's feature, every line of the package (src/, conf/) that names it;
- per-preset lines: override lines beyond the single `model/<group>=<option>` needed for each
  preset to compose and validate (0 when it does; "fails" when it does not);
- presets: how many presets it composed and validated on.
The promise holds when the last three columns are 0, 0 and all, whatever the number of presets.

    .venv/bin/python scripts/loc_complexity.py [--build]   # --build: also build each abstractly
    .venv/bin/python scripts/loc_complexity.py --plugin-root DIR [--json]

`--plugin-root DIR` measures the features of a third-party plugin instead (docs/plugins.md):
DIR goes on the Python path, its `*_config.py` modules are imported, and each YAML option under
DIR (`<conf>/model/<group>/<option>.yaml`) is composed with its conf directory as
`--config-dir`. A feature added without editing hydralearn shows 0 lines elsewhere.
"""

import argparse
import ast
import dataclasses
import importlib
import importlib.util
import json
import re
import sys
import tokenize
from pathlib import Path

from omegaconf import OmegaConf

from hydralearn.config import compose as compose_config
from hydralearn.config.store import register_schemas
from hydralearn.layers import registry

REPO = Path(__file__).resolve().parent.parent
FEATURES = {"position": ["rope", "rope_llama3", "yarn", "rope_linear", "none"], "ffn": ["moe"],
            "adapter": ["lora"], "attention": ["qkv_bias", "qk_norm"]}


@dataclasses.dataclass(frozen=True)
class Row:
    feature: str
    override: str
    own_lines: int
    lines_elsewhere: int
    per_preset_lines: int | None  # None: some preset fails with the single override
    presets_ok: int
    presets: int


def own_files(options: Path, group: str, option: str) -> tuple[Path, ...]:
    """The option's YAML (under the conf directory `options`), its schema's module and its
    layer's module."""
    config_cls = schema_class(options, group, option)
    return (options / "model" / group / f"{option}.yaml", _module_file(config_cls.__module__),
            _module_file(layer_module(config_cls)))


def layer_module(config_cls: type) -> str:
    return registry.default_target(config_cls).rsplit(".", 1)[0]


def _module_file(name: str) -> Path:
    # resolved: the same path as the repository's own files when the package is a symlink
    return Path(importlib.util.find_spec(name).origin).resolve()


def schema_class(options: Path, group: str, option: str) -> type:
    """The registered schema an option extends, following its defaults list (`moe_qwen3`
    extends `moe`, which extends `base_moe`), or the one its `_target_` names."""
    register_schemas()
    node = OmegaConf.load(options / "model" / group / f"{option}.yaml")
    if "defaults" not in node:
        return registry.config_class(str(node._target_))
    first = str(node.defaults[0])
    if not first.startswith("base_"):
        return schema_class(options, group, first)
    places = {place: cls for cls, place in registry.places().items()}
    return places[(f"model/{group}", first.removeprefix("base_"))]


def lines_naming(repo: Path, conf: Path, group: str, option: str, exclude: set[Path],
                 options: Path | None = None) -> int:
    """Lines of model-building code (outside every feature's own module) that name the feature
    in code (its class, or a string holding its module path), plus lines of preset bodies that
    name its option. For a plugin's feature (its options outside conf/): every Python and YAML
    line of the package that names it."""
    plugin = options is not None
    options = options or repo / "conf"
    _, schema, module = own_files(options, group, option)
    classes = {c for f in (schema, module) for c in re.findall(r"^class (\w+)\(", f.read_text(), re.M)}
    dotted = layer_module(schema_class(options, group, option))
    dirs = [repo / "src"] if plugin else [repo / "src" / d for d in ("layers", "compose")]
    code = [p for d in dirs for p in d.rglob("*.py") if p not in exclude]
    count = sum(_code_lines_naming(p, classes, dotted) for p in code)
    if plugin:
        named = rf"\b{re.escape(dotted)}\b|\b{re.escape(option)}\b"
        return count + sum(_yaml_lines_naming(p, named) for p in conf.rglob("*.yaml"))
    for preset in (conf / "model").glob("*.yaml"):
        for line in preset.read_text().splitlines():
            text = line.split("#", 1)[0]
            # A preset choosing its default option in its defaults list is not an edit to enable it.
            if not re.match(rf"\s*-\s*{group}:", text) and re.search(rf"\b{re.escape(option)}\b", text):
                count += 1
    return count


def _yaml_lines_naming(path: Path, pattern: str) -> int:
    return sum(bool(re.search(pattern, line.split("#", 1)[0])) for line in path.read_text().splitlines())


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


def composes(conf: Path, preset: str, override: str, build: bool, options: Path | None = None) -> bool:
    """Whether `model=<preset> <override>` composes and validates (and builds, with `build`),
    with `options` (a plugin's conf directory) as --config-dir; the reason for a failure goes
    to stderr."""
    where = compose_config.Location(config_path=str(conf),
                                    config_dir=str(options) if options else None)
    try:
        config = compose_config.load([f"model={preset}", override], where)
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
            features: dict[str, list[str]] = FEATURES, options: Path | None = None) -> list[Row]:
    """One row per feature; `conf` (default repo/conf) is where presets are looked up, `options`
    where the features' YAML options are (default: conf/ of the repository; a plugin's conf
    directory for a plugin's features)."""
    conf = conf or repo / "conf"
    presets = sorted(p.stem for p in (conf / "model").glob("*.yaml"))
    everyones = {f for g, opts in FEATURES.items() for o in opts for f in own_files(repo / "conf", g, o)}
    rows = []
    for group, names in features.items():
        for option in names:
            own = own_files(options or repo / "conf", group, option)
            override = f"model/{group}={option}"
            ok = sum(composes(conf, p, override, build, options) for p in presets)
            rows.append(Row(feature=option, override=override,
                            own_lines=sum(len(f.read_text().splitlines()) for f in own),
                            lines_elsewhere=lines_naming(repo, conf, group, option, everyones, options),
                            per_preset_lines=0 if ok == len(presets) else None,
                            presets_ok=ok, presets=len(presets)))
    return rows


def plugin_features(root: Path) -> list[tuple[Path, dict[str, list[str]]]]:
    """Import a plugin's `*_config.py` modules (root on the Python path); its conf
    directories, each with the options it holds per group."""
    sys.path.insert(0, str(root))
    for path in sorted(root.rglob("*_config.py")):
        importlib.import_module(".".join(path.relative_to(root).with_suffix("").parts))
    found: dict[Path, dict[str, list[str]]] = {}
    for yaml_file in sorted(root.rglob("model/*/*.yaml")):
        options = yaml_file.parents[2]
        found.setdefault(options, {}).setdefault(yaml_file.parent.name, []).append(yaml_file.stem)
    return list(found.items())


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
    parser.add_argument("--plugin-root", type=Path,
                        help="measure the features of the plugin whose sources are in this directory")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON")
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))
    if args.plugin_root:
        rows = [row for options, features in plugin_features(args.plugin_root.resolve())
                for row in measure(build=args.build, features=features, options=options)]
    else:
        rows = measure(build=args.build)
    print(json.dumps([dataclasses.asdict(r) for r in rows], indent=2) if args.json else table(rows))


if __name__ == "__main__":
    main()
