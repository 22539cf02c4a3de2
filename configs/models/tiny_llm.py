"""Tiny Qwen2-style LLMs for CPU runs: `tiny_llm:size=s|m|l` (vocab of the built-in tokenizer)."""
import ml_collections

from vlm_jax.configs import one_of, parse_arg
from vlm_jax.models import llm

SIZES = {  # hidden, layers, heads, kv heads, mlp
    "xs": (32, 2, 4, 2, 64),
    "s": (48, 2, 4, 2, 128),
    "m": (96, 3, 4, 2, 256),
    "l": (192, 4, 8, 4, 512),
}


def get_config(arg=None):
  arg = parse_arg(arg, size="s", vocab=1024)
  hidden, layers, heads, kv_heads, mlp = SIZES[one_of("tiny_llm size", arg.size, SIZES)]
  cfg = llm.default_config()
  cfg.update(vocab_size=arg.vocab, hidden_size=hidden, intermediate_size=mlp,
             num_layers=layers, num_heads=heads, num_kv_heads=kv_heads,
             head_dim=hidden // heads, max_position_embeddings=1024,
             # Qwen's 1e6 base is for 32k contexts: over the ~100 positions these models
             # see, it leaves their few rotary frequencies nearly still, and locating a
             # visual token by position (which cell, which digit) is then learned far slower.
             rope_theta=1e4,
             # At 2-4 layers the loop costs more than it saves: unrolled, XLA on a CPU
             # drops a third to a half of the step's layout copies
             # (benchmarks/profile_step.py).
             scan_unroll=layers)
  return ml_collections.ConfigDict(dict(kind="llm", dtype="float32", llm=cfg))
