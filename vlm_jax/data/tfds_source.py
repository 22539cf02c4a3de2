"""A prepared TFDS image-question data set as LLaVA records (extra `tfds`).

Features: `image` (uint8 H×W×C), `question`, `answer` and optionally `id`.
Read through `tfds.data_source` (ArrayRecord random access, no TensorFlow);
records are converted lazily, one per index.
"""
from vlm_jax.data.records import qa_record


class TfdsRecords:
  """Random-access records over `tfds.data_source(name, split, data_dir)`."""

  def __init__(self, name, split, data_dir=None):
    try:
      import tensorflow_datasets as tfds  # pylint: disable=import-outside-toplevel
    except ImportError as e:
      raise ImportError("the tfds source needs tensorflow-datasets: pip install 'vlm_jax[tfds]'") from e
    self.name, self.split = name, split
    self._source = tfds.data_source(name, split=split, data_dir=data_dir)

  def __len__(self):
    return len(self._source)

  def __getitem__(self, index):
    example = self._source[index]
    record_id = _text(example["id"]) if "id" in example else f"{self.name}/{self.split}/{index}"
    return qa_record(record_id, example["image"], _text(example["question"]),
                     _text(example["answer"]), f"tfds:{self.name}/{self.split}")

  def __repr__(self):
    return f"TfdsRecords(name={self.name!r}, split={self.split!r})"


def _text(value):
  value = value.item() if hasattr(value, "item") else value
  return value.decode("utf-8") if isinstance(value, bytes) else str(value)
