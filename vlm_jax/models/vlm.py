"""The LLaVA-style VLM: vision tower -> compressor -> projector -> spliced into the LLM."""
import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections

from vlm_jax import compressors
from vlm_jax.models import vision as vision_lib
from vlm_jax.models.llm import DecoderLM, positions_from_mask
from vlm_jax.models.projector import PROJECTORS

IGNORE_INDEX = -100


def splice(text, images, input_ids, image_token_id):
  """Replaces each sequence's single placeholder by its V image tokens.

  text (B, T, ...) per-token values, images (B, V, ...) -> (B, T - 1 + V, ...).
  The placeholder may sit at a different position in every sequence. A
  sequence without one (text only) keeps its T text values at 0..T-1, the
  first V - 1 image values after them; the caller masks those out.
  """
  b, t = input_ids.shape
  v = images.shape[1]
  is_placeholder = input_ids == image_token_id
  place = jnp.where(jnp.any(is_placeholder, axis=1), jnp.argmax(is_placeholder, axis=1),
                    t)[:, None]  # (B, 1)
  j = jnp.arange(t - 1 + v)[None]
  is_image = (j >= place) & (j < place + v)
  text_index = jnp.where(j < place, j, j - v + 1).clip(0, t - 1)
  image_index = (j - place).clip(0, v - 1)
  gather = lambda x, idx: jnp.take_along_axis(
      x, idx.reshape(idx.shape + (1,) * (x.ndim - 2)), axis=1)
  expand = lambda m: m.reshape(m.shape + (1,) * (text.ndim - 2))
  return jnp.where(expand(is_image), gather(images, image_index), gather(text, text_index))


class VLM(nn.Module):
  """(input_ids, attention_mask, pixels[, question]) -> logits over T - 1 + V positions."""
  config: ml_collections.ConfigDict
  dtype: jnp.dtype = jnp.float32

  def setup(self):
    cfg = self.config
    self.vision = vision_lib.VisionTransformer(cfg.vision, self.dtype)
    self.compressor = compressors.build(cfg.compressor, self.dtype)
    self.projector = PROJECTORS.get(cfg.projector.name)(cfg.llm.hidden_size, self.dtype)
    self.llm = DecoderLM(cfg.llm, self.dtype)

  def query_vector(self, question_ids, question_mask):
    """The LLM over the question alone: final-normed state at its last token. (B, Tq) -> (B, D)."""
    hidden = self.llm.forward_embeds(self.llm.embed_tokens(question_ids), question_mask)
    index = jnp.max(jnp.where(question_mask > 0, jnp.arange(question_mask.shape[1]), 0), 1)
    query = jnp.take_along_axis(hidden, index[:, None, None], axis=1)[:, 0]
    return jax.lax.stop_gradient(query) if self.config.compressor.stop_query_grad else query

  def vision_features(self, pixels):
    """pixels (B, H, W, C) -> the compressor's features (B, g, g, d), multi_features
    (B, g, g, L*d)."""
    cfg = self.config
    hidden = self.vision(pixels)["hidden_states"]  # (layers + 1, B, N, d)
    if vision_lib.has_class_token(cfg.vision):
      hidden = hidden[:, :, 1:]
    g = vision_lib.grid_size(cfg.vision)
    grid = lambda x: x.reshape(x.shape[0], g, g, x.shape[-1])
    features = grid(hidden[cfg.compressor.select_layer])
    multi = grid(jnp.concatenate([hidden[i] for i in cfg.compressor.kv_layers], axis=-1))
    return features, multi

  def image_inputs(self, pixels, question_ids=None, question_mask=None):
    """What the compressor reads, whatever its budget: (features, multi_features, query
    (B, D) or None), as `vision_features` and `query_vector` give them."""
    query = None
    if question_ids is not None:
      query = self.query_vector(question_ids, question_mask)
    return (*self.vision_features(pixels), query)

  def encode_images(self, pixels, query=None):
    """pixels (B, H, W, C) -> (B, V, D_llm) visual tokens."""
    return self.compress(*self.vision_features(pixels), query)

  def compress(self, features, multi_features, query=None):
    """`image_inputs` -> (B, V, D_llm) visual tokens at this model's budget."""
    return self.projector(self.compressor(features, multi_features, query))

  def embed_multimodal(self, input_ids, attention_mask, pixels, question_ids=None,
                       question_mask=None, image_inputs=None):
    """-> embeds (B, T-1+V, D), attention_mask (B, T-1+V) with the image spliced in.

    A row without the placeholder (text only) keeps its text at 0..T-1, visual
    tokens after it with mask 0. image_inputs: `image_inputs` of these pixels and
    question, computed once for several budgets (then pixels and question are unread).
    """
    cfg = self.config
    if image_inputs is None:
      image_inputs = self.image_inputs(pixels, question_ids, question_mask)
    images = self.compress(*image_inputs)
    text_ids = jnp.where(input_ids == cfg.image_token_id, 0, input_ids)
    embeds = splice(self.llm.embed_tokens(text_ids), images, input_ids, cfg.image_token_id)
    # A text-only row's visual tokens (of its blank image) are masked out, so its text
    # positions and position ids are those of the LLM on the text alone.
    has_image = jnp.any(input_ids == cfg.image_token_id, axis=1, keepdims=True)
    image_mask = jnp.broadcast_to(has_image, images.shape[:2]).astype(attention_mask.dtype)
    mask = splice(attention_mask, image_mask, input_ids, cfg.image_token_id)
    return embeds, mask

  def hidden_states(self, input_ids, attention_mask, pixels, question_ids=None,
                    question_mask=None, image_inputs=None):
    """The inputs of `__call__` -> final-normed LLM states (B, T-1+V, D), before the head."""
    embeds, mask = self.embed_multimodal(input_ids, attention_mask, pixels, question_ids,
                                         question_mask, image_inputs)
    return self.llm.forward_embeds(embeds, mask, positions_from_mask(mask))

  def logits(self, hidden):
    """The LM head: (B, L, D) -> (B, L, vocab) float32; reads only `head_params`."""
    return self.llm.logits(hidden)

  def __call__(self, input_ids, attention_mask, pixels, question_ids=None, question_mask=None,
               image_inputs=None):
    return self.logits(self.hidden_states(input_ids, attention_mask, pixels, question_ids,
                                          question_mask, image_inputs))


def head_params(params, config):
  """The part of VLM `params` (of model `config`) the LM head reads: the tied embedding
  or the untied lm_head."""
  name = "embed" if config.llm.tie_embeddings else "lm_head"
  return {"llm": {name: params["llm"][name]}}


def expand_labels(labels, input_ids, num_visual_tokens, image_token_id):
  """(B, T) labels -> (B, T-1+V), IGNORE_INDEX at the visual tokens (after the text when
  a row has no placeholder, as `splice` places them)."""
  images = jnp.full((labels.shape[0], num_visual_tokens), IGNORE_INDEX, labels.dtype)
  return splice(labels, images, input_ids, image_token_id)
