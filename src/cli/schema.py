"""`hydralearn-schema`: JSON Schemas of the config files, for YAML editors.

    hydralearn-schema                  # the whole-config schema on stdout
    hydralearn-schema --out .schemas   # one file per config group + the editor settings to use them

With the YAML language server (VS Code's YAML extension, and others), paste the printed
`yaml.schemas` mapping into the editor settings: every file under conf/ then gets completion,
hover text with defaults, and unknown-key / wrong-type marks.
"""

import argparse
import json
import sys
from pathlib import Path

from hydralearn import CONF_DIR
from hydralearn.cli.errors import exit_with
from hydralearn.errors import ConfigError
from hydralearn.review.jsonschema import group_schema, schema


def config_groups(conf_dir: Path = CONF_DIR) -> list[str]:
    """Every group directory under conf/ that maps to a schema (experiment is a whole config)."""
    return sorted(str(p.relative_to(conf_dir)) for p in conf_dir.rglob("*")
                  if p.is_dir() and p.name != "experiment" and any(p.glob("*.yaml")))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="hydralearn-schema", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="directory for one schema file per config group")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    try:
        whole = schema()  # imports installed plugins, whose layers it lists
    except ConfigError as e:
        exit_with(e)
    if args.out is None:
        print(json.dumps(whole, indent=1))
        return
    args.out.mkdir(parents=True, exist_ok=True)
    mapping = {}
    for name, body, files in [("train", whole, ["conf/train.yaml", "conf/experiment/*.yaml"])] + [
            (group.replace("/", "."), group_schema(group), [f"conf/{group}/*.yaml"])
            for group in config_groups()]:
        path = args.out / f"{name}.schema.json"
        path.write_text(json.dumps(body, indent=1) + "\n")
        mapping[str(path)] = files
    print(json.dumps({"yaml.schemas": mapping}, indent=2))


if __name__ == "__main__":
    main()
