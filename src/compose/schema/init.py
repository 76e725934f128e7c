"""Schema of conf/init: where a new run's weights come from (docs/finetune.md).

`init` is read only when the run has no checkpoint of its own: an existing checkpoint of the
run always wins (resume), and the log says which was used.
"""

import dataclasses
import enum


class HfConfigMode(enum.Enum):
    check = "check"  # config.json must agree with the composed model; every mismatch is listed
    adopt = "adopt"  # the model's architecture is taken from config.json


@dataclasses.dataclass(kw_only=True)
class InitConfig:
    hf: str | None = None  # a local Hugging Face directory: config.json + *.safetensors
    hf_config: HfConfigMode = HfConfigMode.check
