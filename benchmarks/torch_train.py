"""The PyTorch counterpart of a vlm_jax training step, for benchmarks/train_step.py.

`transformers` LlavaForConditionalGeneration with our vision tower, projector and LLM
dims (SDPA attention), a PyTorch QueCC beside it, the query vector from the LLM over
the question without gradient, the visual tokens spliced in before the text, the loss on
the answer tokens, backward, gradient clipping and `torch.optim.AdamW` over the trained
groups. Params are float32; a bfloat16 step runs under autocast, as ours computes in
bfloat16 over float32 params.
"""
import torch
import transformers

from vlm_jax.compressors import regions
from vlm_jax.convert import hf_config
from vlm_jax.models import vision as vision_lib

PROJECTORS = ("mlp2x_gelu",)  # LLaVA's multi_modal_projector


def _stack(d_in, d):
  return torch.nn.Sequential(torch.nn.Linear(d_in, d), torch.nn.GELU(), torch.nn.Linear(d, d),
                             torch.nn.LayerNorm(d, eps=1e-6))


class QueCC(torch.nn.Module):
  """QueCC as vlm_jax.compressors.quecc computes it, with the paper's state-dict names.

  Adaptive regions (regions.py) for any grid: the depthwise downsampling gathers each
  region's taps (those past its own side masked out), and every query attends over all g²
  keys under the region mask. When h, w divide g this is the paper's strided conv and
  region attention.
  """

  def __init__(self, d, d_multi, d_text, g, grid, heads):
    super().__init__()
    h, w = grid
    rows, row_inside = regions.region_taps(g, h)
    cols, col_inside = regions.region_taps(g, w)
    self.text_projection = torch.nn.Sequential(torch.nn.Linear(d_text, d),
                                               torch.nn.LayerNorm(d, eps=1e-6))
    self.q_proj = _stack(d, d)
    self.k_proj = _stack(d_multi, d)
    self.v_proj = _stack(d_multi, d)
    self.q_downsample = torch.nn.Conv2d(d, d, (rows.shape[1], cols.shape[1]), groups=d)
    self.clip_attn = torch.nn.MultiheadAttention(d, heads, batch_first=True)
    self.register_buffer("rows", torch.from_numpy(rows), persistent=False)
    self.register_buffer("cols", torch.from_numpy(cols), persistent=False)
    inside = row_inside[:, :, None, None] & col_inside[None, None, :, :]  # (h, kh, w, kw)
    self.register_buffer("inside", torch.from_numpy(inside)[..., None], persistent=False)
    self.register_buffer("blocked", torch.from_numpy(~regions.region_mask(g, h, w)),
                         persistent=False)
    self.g, self.grid = g, grid

  def forward(self, x, multi, text):
    """x (B, g*g, d), multi (B, g*g, L*d), text (B, d_t) -> (B, h*w, d)."""
    b, d = x.shape[0], x.shape[-1]
    (h, w), g = self.grid, self.g
    q = self.q_proj(x + self.text_projection(text)[:, None, :]).reshape(b, g, g, d)
    patches = q[:, self.rows][:, :, :, self.cols]  # (B, h, kh, w, kw, d)
    kernel = self.q_downsample.weight[:, 0].permute(1, 2, 0)  # (kh, kw, d)
    taps = torch.where(self.inside, kernel[None, :, None], 0).to(patches.dtype)
    q = torch.einsum("bipjqd,ipjqd->bijd", patches, taps) + self.q_downsample.bias
    return self.clip_attn(q.reshape(b, h * w, d), self.k_proj(multi), self.v_proj(multi),
                          attn_mask=self.blocked, need_weights=False)[0]


def no_counterpart(config):
  """Why vlm `config` has no PyTorch counterpart here, or None."""
  if config.compressor.name not in ("identity", "quecc"):
    return f"no PyTorch counterpart of the {config.compressor.name!r} compressor"
  if config.projector.name not in PROJECTORS:
    return f"no PyTorch counterpart of the {config.projector.name!r} projector"
  return None


class TorchVLM(torch.nn.Module):
  """LLaVA in transformers with our dims, our compressor between tower and projector."""

  def __init__(self, config):
    super().__init__()
    identity = config.copy_and_resolve_references()
    identity.compressor.update(name="identity", budget=None, grid=None)
    hf = hf_config.to_hf(identity)  # our tower, projector and LLM as a LlavaConfig
    self.llava = transformers.LlavaForConditionalGeneration._from_config(
        hf, attn_implementation="sdpa")
    if config.llm.remat != "none":  # ours rematerializes the LLM's layers
      self.llava.model.language_model.activation_checkpointing_enable(
          activation_checkpointing_kwargs={"use_reentrant": False})
    g, d = vision_lib.grid_size(config.vision), config.vision.hidden_size
    self.compressor = None
    if config.compressor.name == "quecc":
      self.compressor = QueCC(d, len(config.compressor.kv_layers) * d, config.llm.hidden_size,
                              g, regions.grid_shape(config.compressor, g),
                              config.compressor.num_heads)
    self.config = config

  def groups(self):
    """{param group: its parameters}, named as ours (vision, compressor, projector, llm)."""
    model = self.llava.model
    llm = list(model.language_model.parameters())
    llm += [p for p in self.llava.lm_head.parameters() if all(p is not q for q in llm)]
    return dict(vision=list(model.vision_tower.parameters()),
                compressor=list(self.compressor.parameters()) if self.compressor else [],
                projector=list(model.multi_modal_projector.parameters()), llm=llm)

  def forward(self, pixels, input_ids, labels, question_ids, question_mask):
    """Mean cross-entropy of the answer tokens; pixels (B, C, H, W), ids (B, T) text only.

    The V visual tokens go first: the sequence is (B, V + T), labels -100 at the image.
    """
    cfg, model = self.config, self.llava.model
    with torch.no_grad():  # the frozen tower, and the query pass (stop_query_grad)
      hidden = model.vision_tower(pixels, output_hidden_states=True).hidden_states
      if vision_lib.has_class_token(cfg.vision):
        hidden = [h[:, 1:] for h in hidden]
      features = hidden[cfg.compressor.select_layer]
      multi = torch.cat([hidden[i] for i in cfg.compressor.kv_layers], dim=-1)
      query = None
      if self.compressor is not None:
        if not cfg.compressor.stop_query_grad:
          raise NotImplementedError("the PyTorch side stops the query vector's gradient")
        states = model.language_model(input_ids=question_ids, attention_mask=question_mask,
                                      use_cache=False).last_hidden_state
        last = question_mask.sum(1) - 1  # right padding
        query = states[torch.arange(states.shape[0]), last]
    tokens = features if self.compressor is None else self.compressor(features, multi, query)
    images = model.multi_modal_projector(tokens)
    embeds = torch.cat([images, model.get_input_embeddings()(input_ids)], dim=1)
    ignore = torch.full(images.shape[:2], -100, dtype=labels.dtype, device=labels.device)
    return self.llava(inputs_embeds=embeds, labels=torch.cat([ignore, labels], dim=1),
                      use_cache=False).loss


def make_step(config, optim, device, dtype, trained):
  """-> (step(batch) running one blocking training step, the TorchVLM).

  optim: the training config's `optim`; trained: the param groups to train (AdamW at each
  group's peak learning rate; decay on weights of 2+ dims only, as ours skips biases and
  norm scales); the others are frozen. dtype: the compute dtype (autocast for bfloat16).
  """
  with device:  # initialized where it runs
    model = TorchVLM(config)
  model = model.to(device).train()
  groups = model.groups()
  for name, params in groups.items():
    for p in params:
      p.requires_grad_(name in trained)
  param_groups = []
  for name in trained:
    for decay in (True, False):
      chosen = [p for p in groups[name] if (p.ndim >= 2) == decay]
      if chosen:
        param_groups.append(dict(params=chosen, lr=optim.learning_rates[name],
                                 weight_decay=optim.weight_decay if decay else 0.0))
  params = [p for group in param_groups for p in group["params"]]
  optimizer = torch.optim.AdamW(param_groups, betas=(optim.b1, optim.b2), eps=optim.eps,
                                fused=device.type == "cuda")

  def step(batch):
    with torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32):
      loss = model(**batch)
    loss.backward()
    if optim.clip_norm > 0:
      torch.nn.utils.clip_grad_norm_(params, optim.clip_norm)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    if device.type == "cuda":
      torch.cuda.synchronize()
    return loss

  return step, model
