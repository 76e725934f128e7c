"""The checkpoint names layers tag activations with (`jax.ad_checkpoint.checkpoint_name`),
stated once: the layers tag with them, conf/remat's policies and `remat.names` name them, and
the memory estimate costs them. Imports nothing, so the jax-free config room may read it.
"""

Q_PROJ = "q_proj"  # attention: the query, key and value projections
K_PROJ = "k_proj"
V_PROJ = "v_proj"
ATTN_CONTEXT = "attn_context"  # attention's output before the output projection
O_PROJ = "o_proj"  # the output projection
FFN_IN = "ffn_in"  # a feed-forward's hidden activations (every expert's, in an MoE)
FFN_OUT = "ffn_out"  # a feed-forward's output

QKV_PROJ = (Q_PROJ, K_PROJ, V_PROJ)
CHECKPOINT_NAMES = (*QKV_PROJ, ATTN_CONTEXT, O_PROJ, FFN_IN, FFN_OUT)
