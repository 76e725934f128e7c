"""A config container as one flat mapping of dotted keys: how configs are compared (resume
rule, diff, the processes of a job, HF config.json) and logged (MLflow parameters)."""

from typing import Any


def flatten(tree: dict) -> dict[str, Any]:
    """{'a': {'b': 1, 'c': {}}, 'd': [2]} -> {'a.b': 1, 'a.c': {}, 'd': [2]}.

    Lists are leaves (OmegaConf replaces them whole). An empty mapping is a leaf too, so that
    it shows when it is added, removed or filled.
    """
    out = {}
    for key, value in tree.items():
        if isinstance(value, dict) and value:
            out |= {f"{key}.{k}": v for k, v in flatten(value).items()}
        else:
            out[str(key)] = value
    return out
