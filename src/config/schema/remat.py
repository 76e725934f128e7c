"""Schema of conf/remat: which activations of a block are kept for the backward pass.

Layers tag activations with checkpoint names (layers/checkpoint_names.py); a policy says
which to save on the device, which to offload to host memory, and recomputes the rest
(compose/remat.py).
"""

import dataclasses
import enum

from hydralearn.layers.checkpoint_names import CHECKPOINT_NAMES


class RematPolicy(enum.Enum):
    auto = "auto"  # the hardware profile's preferred_remat
    none = "none"  # save everything: fastest, most memory
    full = "full"  # save only block inputs: recompute the whole block
    save_dots = "save_dots"  # save matmul outputs without batch dims (projections)
    save_qkv_proj = "save_qkv_proj"  # save q/k/v projections
    save_attn_context = "save_attn_context"  # save the attention output: attention never recomputed
    offload_dots = "offload_dots"  # like save_dots, but kept in host memory
    offload_qkv_proj = "offload_qkv_proj"  # like save_qkv_proj, but kept in host memory
    custom = "custom"  # `names` says what to save or offload


class NameAction(enum.Enum):
    save = "save"  # keep on the device
    offload = "offload"  # move to host memory, bring back for the backward pass
    recompute = "recompute"


@dataclasses.dataclass(kw_only=True)
class RematConfig:
    policy: RematPolicy = RematPolicy.auto
    # For policy=custom: checkpoint name -> save | offload | recompute (a dict, so
    # `remat.names.ffn_in=offload` changes one entry).
    names: dict[str, NameAction] = dataclasses.field(default_factory=dict)

    def errors(self) -> list[str]:
        out = [f"remat.names.{n}: unknown checkpoint name; valid names: {', '.join(CHECKPOINT_NAMES)}"
               for n in self.names if n not in CHECKPOINT_NAMES]
        if self.names and self.policy is not RematPolicy.custom:
            out.append(f"remat.names is set but remat.policy={self.policy.value}; use remat=custom "
                       "(or remat.policy=custom) for names to take effect")
        return out

    @property
    def offloads(self) -> bool:
        return self.policy in (RematPolicy.offload_dots, RematPolicy.offload_qkv_proj) or (
            self.policy is RematPolicy.custom and NameAction.offload in self.names.values())
