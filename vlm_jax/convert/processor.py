"""What a Hugging Face folder says about feeding its model: tokenizer, template, images.

`processor_config(...)` reads the source's tokenizer config, processor config
(preprocessor_config.json: resize / crop, mean / std, size) and, for the paper's
LLaVA-QueCC checkpoints, `image_aspect_ratio` and the conversation mode, into the
`processor` section of our model config (see vlm_jax.data.processor);
`copy_tokenizer` carries the tokenizer files over into the converted checkpoint.
"""
import json
import os
import shutil

import ml_collections

from vlm_jax import checkpoints
from vlm_jax.data import processor as processor_lib
from vlm_jax.data.tokenizer import load_tokenizer
from vlm_jax.errors import BadValueError

TOKENIZER_DIR = checkpoints.TOKENIZER_DIR
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                   "added_tokens.json", "vocab.json", "merges.txt", "tokenizer.model",
                   "chat_template.jinja", "chat_template.json", "processor_config.json",
                   "preprocessor_config.json", "generation_config.json")
# The paper's code (LLaVA's conversation modes) by LLM family.
PAPER_TEMPLATES = {"qwen2": "chatml", "llama": "vicuna_v1"}
BICUBIC = 3  # PIL's resample code, which every LLaVA tower's processor uses
ASPECTS = {"pad": "pad", "square": "square", None: "square"}


def has_tokenizer(folder):
  return any(os.path.exists(os.path.join(folder, name))
             for name in ("tokenizer.json", "tokenizer.model", "vocab.json"))


def copy_tokenizer(src, dst):
  """Copies the tokenizer (and processor) files of `src` into `dst`/TOKENIZER_DIR;
  -> the folder's name as a converted checkpoint's processor names it."""
  target = os.path.join(dst, TOKENIZER_DIR)
  os.makedirs(target, exist_ok=True)
  for name in TOKENIZER_FILES:
    if os.path.exists(os.path.join(src, name)):
      shutil.copyfile(os.path.join(src, name), os.path.join(target, name))
  return TOKENIZER_DIR


def check_tokenizer(config, source):
  """Raises BadValueError unless `config.processor`'s tokenizer fits the model: its vocabulary
  within the embedding, and a VLM's image token the tokenizer's id for its text."""
  tokenizer = load_tokenizer(config.processor.tokenizer)
  processor_lib.check_vocabulary(tokenizer, config.llm.vocab_size, source)
  if config.kind == "vlm" and config.image_token_id >= 0:
    token = config.processor.image_token
    token_id = tokenizer.hf_tokenizer.convert_tokens_to_ids(token)
    if token_id != config.image_token_id:
      raise BadValueError(f"{source}: image token {token!r} is id {token_id} in the tokenizer, "
                       f"but the model's image_token_id is {config.image_token_id}")


def processor_config(src, config, hf, image_folder=None):
  """The `processor` section for the model `config` converted from folder `src`.

  hf: the source's config.json; image_folder: where the image processor config
  lies (default `src`; the paper's checkpoints keep it beside their CLIP tower).
  """
  processor = ml_collections.ConfigDict({key: None for key in processor_lib.KEYS})
  processor.eos_token_ids = _eos_token_ids(src, hf)
  if has_tokenizer(src):
    processor.tokenizer = os.fspath(src)
    processor.template = _template(src, config, hf)
  if config.kind == "vlm":
    processor.image_token = _read_json(src, "processor_config.json").get("image_token", "<image>")
    aspect = hf.get("image_aspect_ratio")
    if aspect not in ASPECTS:
      raise BadValueError(f"image_aspect_ratio={aspect!r} is not supported; supported: "
                       "pad, square")
    processor.aspect = ASPECTS[aspect]
  if config.kind in ("vlm", "vision"):
    processor.update(_image_preprocessing(image_folder or src, config.vision))
  return processor


def _template(src, config, hf):
  """The paper's conversation mode for its checkpoints, else the tokenizer's chat template."""
  if hf.get("mm_projector_type") or "mm_vision_tower" in hf:
    return PAPER_TEMPLATES[config.llm.family]
  has_template = (_read_json(src, "tokenizer_config.json").get("chat_template")
                  or os.path.exists(os.path.join(src, "chat_template.jinja"))
                  or os.path.exists(os.path.join(src, "chat_template.json")))
  return "hf" if has_template else None


def _eos_token_ids(src, hf):
  """The ids generation stops at: generation_config.json's, else config.json's."""
  eos = _read_json(src, "generation_config.json").get("eos_token_id")
  if eos is None:
    eos = hf.get("eos_token_id", hf.get("text_config", {}).get("eos_token_id"))
  return [] if eos is None else [eos] if isinstance(eos, int) else list(eos)


def _image_preprocessing(folder, vision):
  """Tower kind, mean and std from `folder`'s preprocessor_config.json (else the tower's)."""
  hf = _read_json(folder, "preprocessor_config.json")
  if not hf:
    return dict(image_preprocess=vision.family)
  crops = hf.get("do_center_crop", False)
  size = hf.get("crop_size") if crops else hf.get("size")
  side = _side(size)
  resize = _side(hf.get("size")) if hf.get("do_resize", True) else None
  if side != vision.image_size or (crops and resize != side) or hf.get("resample", BICUBIC) != BICUBIC:
    raise BadValueError(
        f"{os.path.join(folder, 'preprocessor_config.json')}: unsupported preprocessing "
        f"(size {hf.get('size')}, crop {hf.get('crop_size') if crops else None}, resample "
        f"{hf.get('resample')}); supported: bicubic resize to the tower's {vision.image_size} px, "
        "squashed or shortest edge then centre crop")
  return dict(image_preprocess="clip" if crops else "siglip",
              image_mean=tuple(hf.get("image_mean", (0.5, 0.5, 0.5))),
              image_std=tuple(hf.get("image_std", (0.5, 0.5, 0.5))))


def _side(size):
  """An image processor's size: an int, {shortest_edge}, or {height, width} (square only)."""
  if isinstance(size, int) or size is None:
    return size
  if "shortest_edge" in size:
    return size["shortest_edge"]
  return size["height"] if size.get("height") == size.get("width") else None


def _read_json(folder, name):
  path = os.path.join(folder, name)
  if not os.path.exists(path):
    return {}
  with open(path) as f:
    return json.load(f)
