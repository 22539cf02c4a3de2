"""The data part of a training config: defaults, and validation of a given one."""
import ml_collections
from ml_collections.config_dict import placeholder


def default_config():
  """Every data key with its default (a training config holds this as `config.data`)."""
  return ml_collections.ConfigDict(dict(
      source="easy_vqa",  # easy_vqa | procedural | mixture | llava_json | tfds
      task=placeholder(str),  # procedural task (counting | spatial | ocr) or TFDS data set name
      mixture=(),  # mixture: built-in tasks, e.g. ("easy_vqa", "ocr")
      mixture_weights=(),  # mixture: records per round of each task, e.g. (1, 3); () all 1
      split="train",
      json_path=placeholder(str),  # llava_json: the JSON list of records
      image_dir=placeholder(str),  # llava_json: the folder the records' image names are under
      tfds_data_dir=placeholder(str),
      task_seed=0,  # procedural: the generation seed (independent of the shuffle seed)
      num_examples=placeholder(int),  # procedural: records per split (default 5000 train / 500 test)
      render_size=placeholder(int),  # procedural: image side in pixels (default per task)
      cache_dir=placeholder(str),  # procedural: default $VLM_JAX_CACHE or ~/.cache/vlm_jax
      # Unset (None): the model checkpoint's own (vlm_jax.data.processor), else FALLBACKS.
      tokenizer=placeholder(str),  # "builtin", a local tokenizer folder, or a tokenizer.json
      template=placeholder(str),  # "hf" (the tokenizer's own chat template) | TEMPLATES name
      image_size=placeholder(int),  # unset: the model's tower's
      image_preprocess=placeholder(str),  # siglip | clip
      aspect=placeholder(str),  # square | pad (LLaVA's expand2square first)
      image_mean=placeholder(tuple),  # per channel; unset: the image_preprocess kind's
      image_std=placeholder(tuple),
      image_token=placeholder(str),  # how the chat template writes the image, e.g. "<image>"
      max_length=2048,  # text positions, the image placeholder counting as one
      bucket_lengths=(16, 32, 64, 128, 256, 512, 1024, 2048),
      batch_size=8,  # per host
      seed=0,  # shuffle seed
      shuffle=True,
      num_epochs=placeholder(int),  # None: repeat forever
      drop_remainder=True,
      padding_side="right",
      strict=False,  # True: a bad record raises instead of being skipped and counted
      image_token_id=placeholder(int),  # unset: the model's (LLaVA's -200 without a model)
      read_threads=4,
      worker_count=0,  # grain worker processes (0: read in this process); the order depends on it
  ))


# What an unset processor key means when no checkpoint sets it.
FALLBACKS = dict(tokenizer="builtin", template="chatml", image_preprocess="siglip",
                 aspect="square", image_token="<image>", image_token_id=-200, image_size=224)
_TUPLES = ("bucket_lengths", "mixture", "mixture_weights", "image_mean", "image_std")


def resolve(config, fallbacks=True):
  """`config` over the defaults (and FALLBACKS for what is unset, unless `fallbacks` is
  False: a training config's data, which may still meet a checkpoint's processor);
  unknown keys and bad values raise ValueError."""
  resolved = default_config()
  unknown = sorted(set(config.keys()) - set(resolved.keys()))
  if unknown:
    raise ValueError(f"unknown data config keys {unknown}; known: {sorted(resolved.keys())}")
  for key, value in config.items():
    resolved[key] = tuple(value) if key in _TUPLES and value is not None else value
  for key, value in FALLBACKS.items():
    if fallbacks and resolved[key] is None:
      resolved[key] = value
  if resolved.aspect not in ("square", "pad", None):
    raise ValueError(f"data.aspect must be 'square' or 'pad', got {resolved.aspect!r}")
  if resolved.padding_side not in ("left", "right"):
    raise ValueError(f"data.padding_side must be 'left' or 'right', got {resolved.padding_side!r}")
  if not resolved.bucket_lengths or min(resolved.bucket_lengths) < 1:
    raise ValueError(f"data.bucket_lengths must be positive lengths, got {resolved.bucket_lengths}")
  if resolved.max_length > max(resolved.bucket_lengths):
    raise ValueError(f"data.max_length={resolved.max_length} exceeds the largest bucket "
                     f"{max(resolved.bucket_lengths)}")
  if resolved.batch_size < 1:
    raise ValueError(f"data.batch_size must be positive, got {resolved.batch_size}")
  return resolved
