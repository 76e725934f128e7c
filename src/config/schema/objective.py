"""Schema of conf/objective: what the training step minimises (docs/posttrain.md).

`lm` (the default) is next-token cross-entropy on every target token; `sft` is the same on
the targets the chat data marks (data=chat: the assistant's tokens), the rest of each row
being context. Going from pretraining to SFT is the one override `objective=sft`.
"""

import dataclasses
import enum


class Objective(enum.Enum):
    lm = "lm"  # every token is a target (padding excluded)
    sft = "sft"  # only the tokens data=chat marks are targets; the mean is over them


@dataclasses.dataclass(kw_only=True)
class ObjectiveConfig:
    kind: Objective = Objective.lm
