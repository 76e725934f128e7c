"""Every shipped YAML validates against the generated JSON Schema; mistakes do not."""

from pathlib import Path

import jsonschema
import pytest
from omegaconf import OmegaConf

from hydralearn.cli.schema import config_groups
from hydralearn.config import compose as compose_config
from hydralearn.review.jsonschema import group_schema, schema

CONF = Path(compose_config.CONF_DIR)
FILES = sorted(str(p.relative_to(CONF)) for p in CONF.rglob("*.yaml"))


@pytest.fixture(scope="module")
def validators():
    out = {"": jsonschema.Draft202012Validator(schema())}
    out |= {g: jsonschema.Draft202012Validator(group_schema(g)) for g in config_groups()}
    for v in out.values():
        v.check_schema(v.schema)
    return out


def validator_for(validators, relative: str):
    group = str(Path(relative).parent)
    return validators["" if group in (".", "experiment") else group]


@pytest.mark.parametrize("relative", FILES)
def test_shipped_yaml_validates(validators, relative):
    data = OmegaConf.to_container(OmegaConf.load(CONF / relative))
    errors = [e.message for e in validator_for(validators, relative).iter_errors(data)]
    assert not errors, f"conf/{relative}: {errors}"


@pytest.mark.parametrize("relative, data", [
    ("optim/adamw.yaml", {"lr": "fast"}),  # wrong type
    ("optim/adamw.yaml", {"wrmup_steps": 10}),  # unknown key
    ("remat/none.yaml", {"policy": "sometimes"}),  # not an enum value
    ("model/ffn/swiglu.yaml", {"_target_": "hydralearn.layers.ffn.swiglu.SwiGLU", "approximate": True}),
    ("model/ffn/swiglu.yaml", {"_target_": "os.system"}),  # not a registered target
    ("train.yaml", {"model": {"d_modle": 3}}),
])
def test_mistakes_are_refused(validators, relative, data):
    assert list(validator_for(validators, relative).iter_errors(data))


def test_interpolations_and_missing_values_are_accepted(validators):
    data = {"lr": "${oc.env:LR}", "b1": "???"}
    assert not list(validators["optim"].iter_errors(data))


def test_schema_cli_writes_one_schema_per_group(tmp_path, capsys):
    import json

    from hydralearn.cli import schema as schema_cli
    schema_cli.main(["--out", str(tmp_path)])
    settings = json.loads(capsys.readouterr().out)["yaml.schemas"]
    assert {Path(p).name for p in settings} == {"train.schema.json"} | {
        f"{g.replace('/', '.')}.schema.json" for g in config_groups()}
    assert settings[str(tmp_path / "model.ffn.schema.json")] == ["conf/model/ffn/*.yaml"]
