"""FLOPs of a VLM configuration by part: vision tower, compressor, query pass, projector, LLM.

Conventions (a multiply-add is 2 FLOPs):
- Per-token layers: each parameter of a layer costs 2 FLOPs per token the layer is
  applied to (Kaplan et al. 2020's C = 2N): a kernel weight's multiply-add, and, the
  same way, a bias or a norm's scale/offset (really 1 FLOP each: a negligible
  overcount). Embedding lookups, position embeddings, activations, softmax, RoPE,
  residual adds and norm statistics are not counted.
- Attention: QKᵀ and the weighted sum AV each cost 2·head_dim FLOPs per (query, key)
  pair per query head, 4·heads·head_dim per pair in all. Vision towers and the
  resampler attend densely (all pairs). QueCC and TokenPacker attend region-locally:
  each of the V queries to the keys of its own region, Σ region areas pairs (the
  adaptive regions of `vlm_jax.compressors.regions`; g² when h and w divide g). The LLM
  attends causally, query i to keys 1..i: S(S+1)/2 pairs, 2·L·H·hd·S(S+1) FLOPs for S
  tokens. These are the pairs the algorithm needs; the masked implementations execute
  full squares (the LLM's S², QueCC's V·g²), which these counts leave out.
- Pooling (avgpool, TokenPacker's pooled query): 1 FLOP per pooled element (its add or
  the final divide), Σ region areas · d.
- Inference (`inference_flops`): the vision tower runs every encoder layer (the
  post-encoder LayerNorm, unused by the VLM, is not counted); QueCC's query pass is the
  LLM over the question alone, without the LM head; the LLM prefill covers Q text + V
  visual tokens with the LM head on the last token only, the logits generation needs
  next. That head gives the first of A answer tokens; `decode` counts the other A − 1,
  each one more LLM token with the LM head attending causally to the cache and itself
  (Q + V + the answer tokens before it): the causal forward over Q + V + A − 1 tokens
  less the prefill's. `paper` is the paper's C = 2·N·(Q + V) with N the LLM's total
  parameters (embeddings and an untied LM head included), without decoding.
- Training (`train_flops_per_example`): a trained part costs 3 forwards (forward,
  activation gradients, weight gradients); a frozen part that gradients must cross
  (the LLM in stage 1) 2; a frozen part before every trained one (the vision tower,
  and the query pass under stop_query_grad) 1. The LM head runs on every token.
  A multi-budget step (`multi_budget_train_flops_per_example`) in mode `all` runs the
  compressor, projector and LLM once per budget, the tower and query pass once.
"""
import dataclasses
import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from vlm_jax import configs
from vlm_jax.compressors import regions
from vlm_jax.models import vision as vision_lib
from vlm_jax.models.projector import PROJECTORS
from vlm_jax.registry import Registry

# LLM presets of the paper's grid, by the nominal size (billions) the scaling law uses.
PAPER_LLM_PRESETS = {0.5: "qwen1_5_0_5b", 1.8: "qwen1_5_1_8b", 4.0: "qwen1_5_4b",
                     7.0: "qwen1_5_7b", 14.0: "qwen1_5_14b"}


def _linear(d_in, d_out, bias=True):
  """Parameters of Linear(d_in -> d_out)."""
  return d_in * d_out + (d_out if bias else 0)


def _model_config(config, kinds):
  config = configs.preset(config) if isinstance(config, str) else config
  if config.get("kind") not in kinds:
    raise ValueError(f"need a model config of kind {' or '.join(kinds)}, "
                     f"got kind {config.get('kind')!r}")
  return config


# LLM


def _llm_layer_params(llm):
  q, kv = llm.num_heads * llm.head_dim, llm.num_kv_heads * llm.head_dim
  attention = _linear(llm.hidden_size, q + 2 * kv, llm.qkv_bias) + _linear(q, llm.hidden_size,
                                                                           False)
  return attention + 3 * llm.hidden_size * llm.intermediate_size + 2 * llm.hidden_size


def llm_nonembedding_params(llm):
  """Parameters of the decoder layers and final norm of LLM config `llm`: no embeddings, head."""
  return llm.num_layers * _llm_layer_params(llm) + llm.hidden_size


def llm_params(config):
  """N: total LLM parameters (embeddings and an untied LM head included) of an llm or vlm config."""
  llm = _model_config(config, ("llm", "vlm")).llm
  embeddings = llm.vocab_size * llm.hidden_size * (1 if llm.tie_embeddings else 2)
  return llm_nonembedding_params(llm) + embeddings


def llm_flops(llm, tokens, head_tokens=1):
  """Causal forward of LLM config `llm` over `tokens`: dict of `dense`, `attention`, `head`.

  dense = 2·(non-embedding params)·tokens; attention = 2·L·H·hd·S(S+1) (the causal
  half); head = 2·D·vocab·head_tokens. Elementwise on numpy arrays.
  """
  attention = 2 * llm.num_layers * llm.num_heads * llm.head_dim * tokens * (tokens + 1)
  return dict(dense=2 * llm_nonembedding_params(llm) * tokens, attention=attention,
              head=2 * llm.hidden_size * llm.vocab_size * head_tokens)


def decode_flops(llm, context_tokens, answer_tokens):
  """Decoding `answer_tokens` A after a prefill of `context_tokens` P (elementwise on arrays).

  The prefill's LM head gives the first answer token; each of the other A − 1 is one
  LLM token with the LM head attending to the P + (answer tokens before it) cached
  tokens and itself: llm_flops over P + A − 1 tokens less the prefill's, summed.
  """
  if not float(answer_tokens).is_integer():
    raise ValueError(f"answer_tokens must be a whole number, got {answer_tokens!r}")
  steps = max(answer_tokens - 1, 0)
  full = llm_flops(llm, context_tokens + steps, head_tokens=steps)
  prefill = llm_flops(llm, context_tokens, head_tokens=0)
  return sum(full[part] - prefill[part] for part in full)


# Vision tower


def vision_flops(vision):
  """Forward of vision-tower config `vision` on one image: dict of `dense`, `attention`.

  N = g² patches, + 1 class token for CLIP. dense: the patch embedding on the g²
  patches, CLIP's pre-encoder LayerNorm and every encoder layer on N tokens.
  """
  g, d = vision_lib.grid_size(vision), vision.hidden_size
  clip = vision_lib.has_class_token(vision)
  n = g * g + clip
  patch = g * g * _linear(vision.patch_size ** 2 * vision.num_channels, d, not clip)
  layer = (4 * _linear(d, d) + _linear(d, vision.intermediate_size)
           + _linear(vision.intermediate_size, d) + 2 * 2 * d)
  dense = 2 * (patch + n * (vision.num_layers * layer + (2 * d if clip else 0)))
  width = vision.num_heads * (d // vision.num_heads)
  return dict(dense=dense, attention=4 * vision.num_layers * n * n * width)


# Compressors


@dataclasses.dataclass(frozen=True)
class CompressorShape:
  """What a compressor's FLOPs depend on. coverage: Σ region areas (g² for an even split)."""
  grid: int  # g
  width: int  # d, the select-layer features' width
  kv_width: int  # L·d, the multi-layer features' width
  query_width: int  # d_t, the LLM's hidden size
  num_heads: int
  visual_tokens: float  # V = h·w
  coverage: float


@dataclasses.dataclass(frozen=True)
class CompressorCount:
  flops: Callable  # CompressorShape -> FLOPs per image
  uses_query: bool  # needs the LLM's pass over the question


COMPRESSOR_COUNTS = Registry("compressor FLOPs count")


def _projection_stack(d_in, d, tokens):
  """blocks.ProjectionStack: Linear, GELU, Linear, LayerNorm."""
  return 2 * tokens * (_linear(d_in, d) + _linear(d, d) + 2 * d)


def _attention_projections(d, queries, keys):
  """blocks.MultiHeadAttention's q and out projections on the queries, k and v on the keys."""
  return 2 * (queries + keys) * 2 * _linear(d, d)


def _attention(d, pairs):
  """QKᵀ and AV over `pairs` (query, key) pairs, heads·head_dim = d."""
  return 4 * d * pairs


def _counts(name, uses_query=False):
  """Registers the decorated CompressorShape -> FLOPs function as compressor `name`'s count."""
  def register(flops):
    COMPRESSOR_COUNTS.register(name)(CompressorCount(flops, uses_query))
    return flops
  return register


_counts("identity")(lambda s: 0.0)
_counts("avgpool")(lambda s: s.coverage * s.width)


@_counts("tokenpacker")
def _tokenpacker(s):
  tokens, d = s.grid ** 2, s.width
  return (s.coverage * d + _projection_stack(d, d, s.visual_tokens)
          + 2 * _projection_stack(s.kv_width, d, tokens)
          + _attention_projections(d, s.visual_tokens, tokens) + _attention(d, s.coverage))


@_counts("resampler")
def _resampler(s):
  tokens, d, v = s.grid ** 2, s.width, s.visual_tokens
  norms = 2 * (tokens + 2 * v) * 2 * d  # keys, learned queries, output
  return (norms + _attention_projections(d, v, tokens) + _attention(d, v * tokens)
          + 2 * v * _linear(d, d))


@_counts("quecc", uses_query=True)
def _quecc(s):
  tokens, d, v = s.grid ** 2, s.width, s.visual_tokens
  text = 2 * (_linear(s.query_width, d) + 2 * d)  # projection and LayerNorm of one vector
  downsample = 2 * d * s.coverage + 2 * d * v  # depthwise taps inside each region, bias
  return (text + _projection_stack(d, d, tokens) + downsample
          + 2 * _projection_stack(s.kv_width, d, tokens)
          + _attention_projections(d, v, tokens) + _attention(d, s.coverage))


def _target_grid(config, visual_tokens):
  """(h, w) of the compressor of vlm `config`, or of a budget of `visual_tokens` instead."""
  compressor = config.compressor
  if visual_tokens is not None:
    if not float(visual_tokens).is_integer():
      raise ValueError(f"visual_tokens must be a whole number, got {visual_tokens!r}")
    grid = compressor.get("grid")
    if grid is None or grid[0] * grid[1] != visual_tokens:
      compressor = compressor.copy_and_resolve_references()
      compressor.update(budget=int(visual_tokens), grid=None)
  return regions.grid_shape(compressor, vision_lib.grid_size(config.vision))


def compressor_shape(config, visual_tokens=None):
  """CompressorShape of vlm `config` (visual_tokens: a square budget replacing its own)."""
  h, w = _target_grid(config, visual_tokens)
  g = vision_lib.grid_size(config.vision)
  side = lambda n: int(np.diff(regions.adaptive_bounds(g, n), axis=1).sum())
  return _shape(config, h * w, side(h) * side(w))


def _shape(config, visual_tokens, coverage):
  d = config.vision.hidden_size
  return CompressorShape(
      grid=vision_lib.grid_size(config.vision), width=d,
      kv_width=len(config.compressor.kv_layers) * d, query_width=config.llm.hidden_size,
      num_heads=config.compressor.num_heads, visual_tokens=visual_tokens, coverage=coverage)


# Projector


@functools.lru_cache(maxsize=None)
def _projector_params(name, in_features, out_features):
  module = PROJECTORS.get(name)(out_features)
  shapes = jax.eval_shape(lambda: module.init(jax.random.PRNGKey(0),
                                              jnp.zeros((1, 1, in_features))))
  return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(shapes))


def projector_flops(config, visual_tokens):
  """The projector of vlm `config` on `visual_tokens` tokens: 2·(its params) per token."""
  params = _projector_params(config.projector.name, config.vision.hidden_size,
                             config.llm.hidden_size)
  return 2 * params * visual_tokens


# Totals


def _parts(config, text_tokens, shape, question_tokens, train_llm=None):
  """FLOPs by part: of inference with train_llm None, else of training (the factors above)."""
  count = COMPRESSOR_COUNTS.get(config.compressor.name)
  v = shape.visual_tokens
  training = train_llm is not None
  trained, llm_factor = (3, 3 if train_llm else 2) if training else (1, 1)
  query = 0.0
  if count.uses_query:
    query_factor = 1 if config.compressor.stop_query_grad else llm_factor
    query = query_factor * sum(llm_flops(config.llm, question_tokens, head_tokens=0).values())
  llm = llm_flops(config.llm, text_tokens + v, head_tokens=text_tokens + v if training else 1)
  return dict(
      vision=sum(vision_flops(config.vision).values()),
      compressor=trained * count.flops(shape),
      query=query,
      projector=trained * projector_flops(config, v),
      llm=llm_factor * sum(llm.values()))


def _check_tokens(**tokens):
  """Refuses negative token counts; NaN passes through (no affordable V in scaling.frontier)."""
  for name, value in tokens.items():
    if value is not None and np.any(np.asarray(value) < 0):
      raise ValueError(f"{name} must be non-negative, got {value!r}")


def inference_flops(config, text_tokens, visual_tokens=None, question_tokens=None,
                    answer_tokens=0):
  """Inference FLOPs of one query to vlm `config` (a ConfigDict or a `vlm:...` preset spec).

  text_tokens Q: the prompt's text tokens beside the image; visual_tokens V: a square
  budget (default: the compressor's own); question_tokens: the question alone, for
  QueCC's query pass (default Q); answer_tokens A: the tokens generated in answer.
  Returns a dict of FLOPs by part (`vision`, `compressor`, `query`, `projector`, `llm`,
  `decode`), their `total`, the paper's `paper` = 2·N·(Q + V), `llm_params` N, and the
  `text_tokens`, `visual_tokens`, `answer_tokens` used.
  """
  config = _model_config(config, ("vlm",))
  _check_tokens(text_tokens=text_tokens, question_tokens=question_tokens,
                answer_tokens=answer_tokens)
  q = question_tokens if question_tokens is not None else text_tokens
  return _inference(config, text_tokens, compressor_shape(config, visual_tokens), q,
                    answer_tokens)


def _inference(config, text_tokens, shape, question_tokens, answer_tokens):
  """inference_flops' dict for a CompressorShape (elementwise on arrays of Q and V)."""
  v = shape.visual_tokens
  parts = dict(_parts(config, text_tokens, shape, question_tokens),
               decode=decode_flops(config.llm, text_tokens + v, answer_tokens))
  n = llm_params(config)
  return dict(parts, total=sum(parts.values()), paper=2 * n * (text_tokens + v), llm_params=n,
              text_tokens=text_tokens, visual_tokens=v, answer_tokens=answer_tokens)


def train_flops_per_example(config, text_tokens, visual_tokens=None, train_llm=True,
                            question_tokens=None):
  """Training FLOPs of one example (forward and backward), for model FLOPs utilization.

  3× the forward of the compressor and projector, 3× the LLM's (2× with train_llm=False,
  stage 1: frozen but crossed by the projector's gradients) with the LM head on all
  Q + V tokens, 1× the frozen vision tower and, under stop_query_grad, 1× the query pass.
  """
  return sum(_train_parts(config, text_tokens, visual_tokens, train_llm,
                          question_tokens).values())


def multi_budget_train_flops_per_example(config, text_tokens, mode, train_llm=True,
                                         question_tokens=None):
  """Training FLOPs of one example in a step of multi-budget `mode` (train/multi_budget.py).

  `all`: the vision tower and query pass once, the compressor, projector and LLM at every
  one of config.compressor.budgets; `sample`: the mean over the budgets of
  `train_flops_per_example` (a step's expected cost). Without budgets: the config's own.
  """
  if mode not in ("all", "sample"):
    raise ValueError(f"multi-budget mode must be 'all' or 'sample', got {mode!r}")
  budgets = sorted(_model_config(config, ("vlm",)).compressor.get("budgets") or ())
  if not budgets:
    return train_flops_per_example(config, text_tokens, None, train_llm, question_tokens)
  parts = [_train_parts(config, text_tokens, v, train_llm, question_tokens) for v in budgets]
  totals = sum(sum(p.values()) for p in parts)
  if mode == "sample":
    return totals / len(parts)
  return totals - (len(parts) - 1) * (parts[0]["vision"] + parts[0]["query"])


def _train_parts(config, text_tokens, visual_tokens, train_llm, question_tokens):
  config = _model_config(config, ("vlm",))
  _check_tokens(text_tokens=text_tokens, question_tokens=question_tokens)
  q = question_tokens if question_tokens is not None else text_tokens
  return _parts(config, text_tokens, compressor_shape(config, visual_tokens), q,
                train_llm=bool(train_llm))


# Tables


def table(configs_or_specs, text_tokens, visual_tokens=(None,), answer_tokens=0):
  """inference_flops rows: each vlm config (ConfigDict or preset spec) × each V in visual_tokens.

  Each row adds `model`: the spec, or "<llm params>B + <vision> + <compressor>".
  """
  rows = []
  for config in configs_or_specs:
    resolved = _model_config(config, ("vlm",))
    name = config if isinstance(config, str) else _describe(resolved)
    for v in visual_tokens:
      rows.append(dict(model=name, **inference_flops(resolved, text_tokens, v,
                                                     answer_tokens=answer_tokens)))
  return rows


def _describe(config):
  return (f"{llm_params(config) / 1e9:.2f}B LLM + {config.vision.family} "
          f"{config.vision.image_size}px + {config.compressor.name}")


_COLUMNS = (("vision", "vision"), ("compressor", "compressor"), ("query", "query pass"),
            ("projector", "projector"), ("llm", "LLM"), ("decode", "decode"),
            ("total", "total"), ("paper", "paper 2N(Q+V)"))


def format_table(rows):
  """Markdown table of `table` rows, FLOPs in GFLOPs, under a one-line caption.

  The A and decode columns appear where some row decodes answer tokens.
  """
  decoding = any(row["answer_tokens"] for row in rows)
  shown = lambda key: decoding or key not in ("answer_tokens", "decode")
  columns = [(key, title) for key, title in _COLUMNS if shown(key)]
  counts = [(key, title) for key, title in (("text_tokens", "Q"), ("visual_tokens", "V"),
                                           ("answer_tokens", "A")) if shown(key)]
  header = (["model", "N (B)"] + [title for _, title in counts + columns]
            + ["LLM % of total"])
  lines = ["GFLOPs per query (N: LLM parameters, billions).", "",
           "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
  for row in rows:
    cells = [row["model"], f"{row['llm_params'] / 1e9:.2f}"]
    cells += [f"{row[key]:g}" for key, _ in counts]
    cells += [f"{row[key] / 1e9:,.2f}" for key, _ in columns]
    cells.append(f"{100 * row['llm'] / row['total']:.1f}")
    lines.append("| " + " | ".join(cells) + " |")
  return "\n".join(lines)


# A cost model for vlm_jax.scaling


def make_cost_fn(vision="clip_vit_l_14_336", compressor="quecc", llm_presets=None,
                 answer_tokens=0):
  """The cost_fn of `vision` and `compressor` (preset names) with each LLM preset, decoding
  `answer_tokens` per query: an InferenceCost."""
  return InferenceCost(f"vlm:vision={vision},compressor={compressor}", llm_presets,
                       answer_tokens)


class InferenceCost:
  """cost(n_params_b, visual_tokens, text_tokens) -> inference `total` FLOPs, for scaling.

  model: a `vlm:...` preset spec that names no LLM; llm_presets maps each candidate N
  (billions, as the scaling law names them) to an LLM preset name (default
  PAPER_LLM_PRESETS) to put in it. Every N passed must be one of its keys, so use
  `frontier(..., llm_params_b=...)`, not a continuous `llm_params_range`. V may be any
  number, continuous too, up to `max_visual_tokens` (g², all the tower gives): the
  region-local compressor terms take an even split (Σ region areas = g²), exact when
  the target grid divides the encoder's. QueCC's question = the Q text tokens; each
  query decodes `answer_tokens`. Elementwise on numpy arrays.
  """

  PARTS = ("vision", "compressor", "query", "projector", "llm", "decode")  # sum: `total`

  def __init__(self, model, llm_presets=None, answer_tokens=0):
    preset_file, _, arg = model.partition(":")
    if preset_file != "vlm" or "llm" in (item.partition("=")[0] for item in arg.split(",")):
      raise ValueError(f"need a vlm preset spec without an LLM, e.g. "
                       f"vlm:vision=clip_vit_l_14_336,compressor=quecc; got {model!r}")
    _check_tokens(answer_tokens=answer_tokens)
    llm_presets = PAPER_LLM_PRESETS if llm_presets is None else llm_presets
    self.configs = {float(n): configs.preset(f"vlm:llm={name}" + (f",{arg}" if arg else ""))
                    for n, name in llm_presets.items()}
    self.answer_tokens = answer_tokens
    tower = next(iter(self.configs.values())).vision
    self.max_visual_tokens = vision_lib.grid_size(tower) ** 2

  def __call__(self, n_params_b, visual_tokens, text_tokens):
    return self.breakdown(n_params_b, visual_tokens, text_tokens)["total"]

  def breakdown(self, n_params_b, visual_tokens, text_tokens):
    """inference_flops' dict (the parts, `total`, `paper`, ...), each a float or an array
    of the broadcast shape of the arguments."""
    n, v, q = np.broadcast_arrays(*(np.asarray(x, dtype=float)
                                    for x in (n_params_b, visual_tokens, text_tokens)))
    _check_tokens(visual_tokens=v, text_tokens=q)
    out, known = {}, np.zeros(n.shape, bool)
    for size, config in self.configs.items():
      at = np.isclose(n, size, rtol=1e-9, atol=0.0)
      shape = _shape(config, v[at], coverage=self.max_visual_tokens)  # an even split
      for key, value in _inference(config, q[at], shape, q[at], self.answer_tokens).items():
        out.setdefault(key, np.zeros(n.shape))[at] = value
      known |= at
    unknown = np.unique(n[~known])
    if unknown.size:
      raise ValueError(f"no LLM preset for N = {unknown.tolist()} (billions); known: "
                       f"{sorted(self.configs)}")
    return {key: value[()] if value.ndim == 0 else value for key, value in out.items()}
