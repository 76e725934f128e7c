"""The `model` config group's schema: a decoder-only transformer (layers/decoder.py).

The decoder owns the dimensions its children share and hands them down at build time;
attention, position, ffn and norm are child configs chosen by group options
(model/position=...). Fields with `shape` metadata change parameter shapes or dtypes (layers/registry.py).
"""

import dataclasses
from typing import Any

from omegaconf import MISSING

from hydralearn.layers.registry import register

DTYPES = ("float32", "bfloat16", "float16")


@register(group="model", name="decoder")
@dataclasses.dataclass(kw_only=True)
class DecoderConfig:
    _target_: str = "hydralearn.layers.decoder.Decoder"
    # An int, or `auto`: the data's tokenizer size rounded up to a multiple of 128, made
    # concrete before building (compose/resolve.py) and recorded in resolved_config.yaml.
    vocab_size: Any = dataclasses.field(default=MISSING, metadata={"shape": True, "json_schema": {
        "anyOf": [{"type": "integer", "exclusiveMinimum": 0}, {"const": "auto"}]}})
    d_model: int = dataclasses.field(default=MISSING, metadata={"shape": True})
    num_layers: int = dataclasses.field(default=MISSING, metadata={"shape": True})
    num_heads: int = dataclasses.field(default=MISSING, metadata={"shape": True})
    num_kv_heads: int = dataclasses.field(default=MISSING, metadata={"shape": True})
    # None: d_model // num_heads
    head_dim: int | None = dataclasses.field(default=None, metadata={"shape": True})
    ffn_dim: int = dataclasses.field(default=MISSING, metadata={"shape": True})
    rope_theta: float = 10000.0
    tie_embeddings: bool = dataclasses.field(default=False, metadata={"shape": True})
    param_dtype: str = dataclasses.field(default="float32", metadata={"shape": True})
    # auto: the hardware profile's preferred_compute_dtype (bfloat16 on accelerators)
    compute_dtype: str = "auto"
    init_std: float = 0.02
    # model/attention=gqa (the default, conf/train.yaml), qkv_bias, qk_norm; None: gqa
    attention: Any = None
    position: Any = MISSING
    ffn: Any = MISSING
    norm: Any = MISSING
    # Applied to the built model (layers/adapter), e.g. model/adapter=lora; None: none.
    adapter: Any = None

    @property
    def resolved_head_dim(self) -> int:
        return self.head_dim or self.d_model // self.num_heads

    def errors(self) -> list[str]:
        """Cross-field rules; every violation is reported, not just the first."""
        out = [f"model.{name}={getattr(self, name)} must be positive"
               for name in ("d_model", "num_layers", "num_heads", "num_kv_heads", "ffn_dim")
               if getattr(self, name) <= 0]
        vocab = self.vocab_size
        if vocab != "auto" and (isinstance(vocab, bool) or not isinstance(vocab, int) or vocab <= 0):
            out.append(f"model.vocab_size={vocab!r} must be a positive integer or auto")
        if out:
            return out
        if self.head_dim is None and self.d_model % self.num_heads:
            out.append(f"model.d_model={self.d_model} must be divisible by model.num_heads="
                       f"{self.num_heads} (or set model.head_dim)")
        if self.num_layers % len(ffn_pattern(self.ffn)):
            out.append(f"model.num_layers={self.num_layers} must be a multiple of the ffn's "
                       f"layer pattern ({len(ffn_pattern(self.ffn))} layers, model.ffn.every)")
        if self.num_heads % self.num_kv_heads:
            out.append(f"model.num_heads={self.num_heads} must be divisible by "
                       f"model.num_kv_heads={self.num_kv_heads}")
        if self.param_dtype not in DTYPES:
            out.append(f"model.param_dtype={self.param_dtype!r} must be one of {', '.join(DTYPES)}")
        if self.compute_dtype not in (*DTYPES, "auto"):
            out.append(f"model.compute_dtype={self.compute_dtype!r} must be auto or one of "
                       f"{', '.join(DTYPES)}")
        children = (self.attention, self.position, self.ffn, self.norm, self.adapter)
        for child in (c for c in children if c is not None):  # the children's own rules
            out += getattr(child, "errors", list)()
        if not out:  # the position option's rules on the head_dim it is handed
            rules = getattr(self.position, "head_dim_errors", lambda head_dim: [])
            out += [f"model.position: {e}" for e in rules(self.resolved_head_dim)]
        return out


def ffn_pattern(ffn: Any) -> tuple[Any, ...]:
    """The ffn configs of one repeating group of layers (see layers/ffn/__init__.py)."""
    return getattr(ffn, "layer_pattern", lambda: (ffn,))()
