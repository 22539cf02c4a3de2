"""How a model is fed: the `processor` a checkpoint records, and its meeting with a data config.

A model checkpoint's config.json holds, beside the architecture, a `processor`
section with the data keys below: the tokenizer (a folder inside the checkpoint,
"builtin" or a path), the chat template ("hf" for the tokenizer's own Jinja
template, or a name in TEMPLATES), the image preprocessing (tower kind, LLaVA's
`pad` or not, mean and std) and the image token's text. `vlm-jax convert` reads
them from the source folder; a training run records what it trained with.
Evaluation and fine-tuning take them as defaults: a data config value that
contradicts the checkpoint is an error naming both, unless given explicitly
(`--set data.KEY=VALUE`).
"""
import logging

import ml_collections

from vlm_jax.errors import BadValueError

log = logging.getLogger(__name__)

KEYS = ("tokenizer", "template", "image_preprocess", "aspect", "image_mean", "image_std",
        "image_token")


def from_data_config(data):
  """The processor a resolved data config describes (what a training run records)."""
  return ml_collections.ConfigDict({key: data[key] for key in KEYS})


def merge(data, processor, source, explicit=()):
  """`data` (a data ConfigDict, changed in place) with its unset KEYS from `processor`.

  source: the checkpoint, named in errors; explicit: data keys given as overrides,
  which win over the checkpoint. Raises BadValueError where a config value contradicts
  the checkpoint's.
  """
  for key in KEYS:
    theirs = processor.get(key) if processor else None
    ours = data.get(key)
    if theirs is None or _same(ours, theirs):
      continue
    if ours is None:
      data[key] = tuple(theirs) if isinstance(theirs, list) else theirs
    elif key in explicit:
      log.warning("data.%s=%r overrides %r of %s", key, ours, theirs, source)
    else:
      raise BadValueError(f"data.{key}={ours!r} contradicts {source}'s {theirs!r}; leave it unset "
                       f"to use the checkpoint's, or override it with --set data.{key}=...")
  return data


def explicit_data_keys(overrides):
  """The data keys named by `KEY=VALUE` overrides, e.g. 'data.template=chatml' -> {'template'}."""
  return {item.partition("=")[0][len("data."):] for item in overrides
          if item.startswith("data.")}


def check_vocabulary(tokenizer, vocab_size, source):
  """Raises BadValueError unless every id of `tokenizer` has a row in the model's embedding."""
  if len(tokenizer) > vocab_size:
    raise BadValueError(f"the tokenizer has {len(tokenizer)} tokens but {source}'s embedding has "
                     f"{vocab_size} rows: it is another model's tokenizer")


def _same(a, b):
  listed = lambda x: list(x) if isinstance(x, (list, tuple)) else x
  return listed(a) == listed(b)
