"""`hydralearn-train --help` (cli/app_help.py, config/groups.py): Hydra's help template filled
from one composition, each group listing the YAML options a user can pick, never the `base_*`
schemas they extend. The reference is conf/ itself, walked as files."""

from pathlib import Path

from omegaconf import OmegaConf

from hydralearn import CONF_DIR
from hydralearn.cli import app_help
from hydralearn.config import compose as compose_config
from hydralearn.config.groups import group_options


def options_on_disk(*roots: Path) -> dict[str, list[str]]:
    """{group: option file names} of every directory below `roots` that holds YAML files."""
    found: dict[str, set[str]] = {}
    for root in roots:
        for path in root.rglob("*.yaml"):
            if path.parent != root:
                found.setdefault(path.parent.relative_to(root).as_posix(), set()).add(path.stem)
    return {group: sorted(names) for group, names in found.items()}


def test_help_lists_the_yaml_options_of_each_group_and_the_job_config():
    cfg = compose_config.compose([])
    text = app_help.render(cfg)
    listed = text.split("== Configuration groups ==\n")[1].split("\n\n== Config ==")[0]
    expected = {g: o for g, o in options_on_disk(CONF_DIR).items() if not g.startswith("hydra/")}
    lines = [f"{group}: {', '.join(options)}" for group, options in sorted(expected.items())]
    assert listed.splitlines()[1:] == ["", *lines]
    assert "base_" not in listed and "hydra/" not in listed
    job = OmegaConf.to_yaml(OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"]))
    assert f"Override anything in the config (foo.bar=value)\n\n{job}\n" in text
    assert text.startswith("train is powered by Hydra.\n")


def test_a_users_config_dir_adds_its_options(tmp_path):
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "mine.yaml").write_text("defaults: [llama_tiny, _self_]\n")
    cfg = compose_config.compose([], compose_config.Location(config_dir=str(tmp_path)))
    options = group_options(cfg.hydra.runtime.config_sources)
    assert options["model"] == options_on_disk(CONF_DIR, tmp_path)["model"]
    assert "mine" in options["model"]
    # Hydra's own groups are groups too ($HYDRA_CONFIG_GROUPS), conf/'s launcher among them.
    assert "slurm" in options["hydra/launcher"] and "basic" in options["hydra/launcher"]


def test_a_template_naming_what_only_hydra_fills_is_left_to_hydra():
    assert app_help.render(compose_config.compose(["hydra.help.template=$FLAGS_HELP"])) is None
    cfg = compose_config.compose(["hydra.help.template=$HYDRA_CONFIG_GROUPS"])
    hydra_groups = app_help.render(cfg)
    assert hydra_groups.startswith("hydra: config\nhydra/env: default\n")
    assert "hydra/sweeper: basic\n" in hydra_groups
