"""Schema of conf/kernel: which attention kernel every Attention layer calls."""

import dataclasses
import enum


class Kernel(enum.Enum):
    auto = "auto"  # the hardware's preferred kernel where it can run, else xla
    xla = "xla"  # jax.nn.dot_product_attention through XLA: runs everywhere
    cudnn = "cudnn"  # the same API's cuDNN fused (flash) path: NVIDIA GPU, bf16/fp16
    pallas = "pallas"  # Pallas/Triton flash attention: NVIDIA GPU
    splash = "splash"  # Pallas splash attention: TPU, sequence a multiple of 128


@dataclasses.dataclass(kw_only=True)
class KernelConfig:
    name: Kernel = Kernel.auto
    # auto picks a flash kernel only from this sequence length on (below it XLA is as fast).
    flash_min_seq_len: int = 1024
    # Tile sizes of the pallas and splash kernels (clipped to the sequence length).
    block_q: int = 128
    block_kv: int = 128

    def errors(self) -> list[str]:
        return [f"kernel.{n}={getattr(self, n)} must be positive"
                for n in ("flash_min_seq_len", "block_q", "block_kv") if getattr(self, n) <= 0]
