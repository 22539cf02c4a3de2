"""What feeding an exported model needs, in the files a Hugging Face folder has for it.

From the checkpoint's `processor` section (vlm_jax.data.processor): its tokenizer files
(with the chat template they hold), `generation_config.json` with the eos ids, and
the image processor (`preprocessor_config.json`, a CLIPImageProcessor: shortest-edge
resize and centre crop, or a squash, with the recorded mean and std); for LLaVA the
LlavaProcessor's `processor_config.json` (image token, patch size, feature strategy).
"""
import json
import logging
import os
import shutil

from vlm_jax import errors
from vlm_jax.convert import processor as import_processor
from vlm_jax.data import images
from vlm_jax.data.tokenizer import BUILTIN_TOKENIZER_DIR, load_tokenizer
from vlm_jax.models import vision as vision_lib

log = logging.getLogger(__name__)

IMAGE_PROCESSOR_FILE = "preprocessor_config.json"
PROCESSOR_FILE = "processor_config.json"
GENERATION_FILE = "generation_config.json"
# The tokenizer's own files; the processor's are written from the config.
TOKENIZER_FILES = tuple(name for name in import_processor.TOKENIZER_FILES
                        if name not in (IMAGE_PROCESSOR_FILE, PROCESSOR_FILE))
DEFAULT_IMAGE_TOKEN = "<image>"


def _processor(config):
  return config.get("processor") or {}


def image_processor_config(config):
  """preprocessor_config.json of the tower's recorded preprocessing."""
  processor, side = _processor(config), config.vision.image_size
  transform = images.IMAGE_TRANSFORMS.get(processor.get("image_preprocess")
                                          or config.vision.family)
  crops = transform.shortest_edge_crop
  return dict(
      image_processor_type="CLIPImageProcessor", do_convert_rgb=True, do_resize=True,
      size={"shortest_edge": side} if crops else {"height": side, "width": side},
      resample=import_processor.BICUBIC, do_center_crop=crops,
      crop_size={"height": side, "width": side}, do_rescale=True, rescale_factor=1 / 255,
      do_normalize=True, image_mean=list(processor.get("image_mean") or transform.mean),
      image_std=list(processor.get("image_std") or transform.std))


def llava_processor_files(config):
  """{file name: content} of the LlavaProcessor's configs (transformers 4.x and 5.x)."""
  if _processor(config).get("aspect") == "pad":
    log.warning("the model was fed images padded to a square (LLaVA's `pad`), which "
                "LlavaProcessor does not do: it resizes and crops them as they are")
  image_processor = image_processor_config(config)
  clip = vision_lib.has_class_token(config.vision)
  return {IMAGE_PROCESSOR_FILE: image_processor, PROCESSOR_FILE: dict(
      processor_class="LlavaProcessor", image_processor=image_processor,
      image_token=_processor(config).get("image_token") or DEFAULT_IMAGE_TOKEN,
      patch_size=config.vision.patch_size, num_additional_image_tokens=int(clip),
      vision_feature_select_strategy="default" if clip else "full")}


def llava_image_token_id(config):
  """The placeholder's id for LlavaForConditionalGeneration: ours when in the vocabulary,
  else (e.g. -200) the tokenizer's id of the image token."""
  if config.image_token_id >= 0:
    return config.image_token_id
  token = _processor(config).get("image_token") or DEFAULT_IMAGE_TOKEN
  path = _processor(config).get("tokenizer")
  vocabulary = load_tokenizer(path).hf_tokenizer.get_vocab() if path else {}
  if vocabulary.get(token, config.llm.vocab_size) >= config.llm.vocab_size:
    raise errors.BadValueError(
        f"LlavaForConditionalGeneration marks the image with a token of the vocabulary; "
        f"the model's placeholder is {config.image_token_id} and its tokenizer "
        f"({path or 'none recorded'}) has no {token!r} within its {config.llm.vocab_size} "
        "embedding rows")
  return vocabulary[token]


def write_tokenizer(config, folder):
  """Copies the recorded tokenizer's files into `folder` and writes generation_config.json
  with the eos ids (unless the tokenizer brought one). -> the files written."""
  processor = _processor(config)
  path = processor.get("tokenizer")
  if not path:
    log.warning("the checkpoint records no tokenizer: the export has none")
    return []
  sources = _tokenizer_sources(BUILTIN_TOKENIZER_DIR if path == "builtin" else path)
  for name, source in sources.items():
    shutil.copyfile(source, os.path.join(folder, name))
  written = sorted(sources)
  eos = list(processor.get("eos_token_ids") or [])
  if GENERATION_FILE not in sources and eos:
    write_json(os.path.join(folder, GENERATION_FILE),
               {"eos_token_id": eos[0] if len(eos) == 1 else eos})
    written.append(GENERATION_FILE)
  return written


def warn_unless_hf_template(config):
  """Hugging Face pipelines apply the tokenizer's Jinja template: warns where the model
  was fed one of vlm-jax's own (vlm_jax.data.templates)."""
  template = _processor(config).get("template")
  if template not in (None, "hf"):
    log.warning("the model was fed vlm-jax's chat template %r; the export carries only the "
                "tokenizer's own (if any)", template)


def _tokenizer_sources(path):
  """{file name: path} of a tokenizer folder's files, or of a bare tokenizer.json."""
  if os.path.isfile(path):
    return {"tokenizer.json": path}
  if not os.path.isdir(path):
    raise FileNotFoundError(f"the checkpoint's tokenizer {path} does not exist")
  return {name: os.path.join(path, name) for name in TOKENIZER_FILES
          if os.path.exists(os.path.join(path, name))}


def write_json(path, content):
  with open(path, "w") as f:
    json.dump(content, f, indent=2)
