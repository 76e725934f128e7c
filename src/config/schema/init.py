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
    # Another run's weights: its run directory (or its checkpoints/ directory), `@step` for a
    # given step (default: the newest intact one).
    checkpoint: str | None = None
    # With init.checkpoint: also take its optimizer state (the step count starts at 0 anyway);
    # needs the same model and optimizer. False: a fresh optimizer, and the other run's
    # adapters (if any) are merged into its weights first.
    checkpoint_optimizer: bool = True

    def errors(self) -> list[str]:
        if self.hf and self.checkpoint:
            return ["init.hf and init.checkpoint are both set; a run starts from one of them"]
        return []
