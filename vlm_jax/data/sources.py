"""Record sources by name: each maps (config, split) to a random-access sequence of records."""
from vlm_jax.data import procedural
from vlm_jax.data.easy_vqa_source import easy_vqa_records
from vlm_jax.data.records import read_llava_json
from vlm_jax.data.tfds_source import TfdsRecords
from vlm_jax.registry import Registry

SOURCES = Registry("data source")


def _require(config, key):
  if config.get(key) is None:
    raise ValueError(f"data.source={config.source!r} needs data.{key}")
  return config[key]


@SOURCES.register("easy_vqa")
def _easy_vqa(config, split):
  del config
  return easy_vqa_records(split)


@SOURCES.register("procedural")
def _procedural(config, split):
  return _procedural_task(config, _require(config, "task"), split)


def _procedural_task(config, task, split):
  return procedural.generate(task, split, seed=config.task_seed,
                             num_examples=config.num_examples, render_size=config.render_size,
                             cache_dir=config.cache_dir)


@SOURCES.register("mixture")
def _mixture(config, split):
  """Built-in tasks (`easy_vqa` or procedural task names) interleaved by integer weights:
  each round takes `weight` records of every task in turn, a task's records repeating
  until the task that needs the most rounds is used up."""
  tasks, weights = config.mixture, config.mixture_weights or (1,) * len(config.mixture)
  if not tasks:
    raise ValueError("data.source='mixture' needs data.mixture, e.g. ('easy_vqa', 'ocr')")
  if len(weights) != len(tasks) or min(weights) < 1:
    raise ValueError(f"data.mixture_weights={weights} must be one positive integer per task "
                     f"of data.mixture={tasks}")
  parts = [easy_vqa_records(split) if task == "easy_vqa" else _procedural_task(config, task, split)
           for task in tasks]
  rounds = max(-(-len(part) // weight) for part, weight in zip(parts, weights))
  return [part[(r * weight + i) % len(part)] for r in range(rounds)
          for part, weight in zip(parts, weights) for i in range(weight)]


@SOURCES.register("llava_json")
def _llava_json(config, split):
  del split  # the file is the split
  return read_llava_json(_require(config, "json_path"), config.image_dir)


@SOURCES.register("tfds")
def _tfds(config, split):
  return TfdsRecords(_require(config, "task"), split, config.tfds_data_dir)


def load_records(config, split=None):
  """The records of `split` (default config.split) from config.source."""
  return SOURCES.get(config.source)(config, split or config.split)
