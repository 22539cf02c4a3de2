"""A tiny VLM training config and a deterministic synthetic data set for the training tests.

Example i: a 16-token prompt (12 tokens when (i // 2) is odd) with the image
placeholder at position 1 + i % 3; the 3 answer tokens name the example's class
c = i % 4, which also lights one quadrant of its 32x32 image, so the answer is
learnable from the image alone.
"""
import numpy as np

from vlm_jax import configs, train

IMAGE_TOKEN_ID = -200
IMAGE_SIZE = 32
QUESTION_LENGTH = 4
ANSWER_LENGTH = 3


def model_config(compressor="quecc"):
  """tiny_llm xs with a 2-layer 32 px tower (a 4x4 grid), 4 visual tokens (identity: 16)."""
  budget = 16 if compressor == "identity" else 4
  config = configs.preset(f"vlm:llm=tiny_llm:size=xs,compressor={compressor},budget={budget}")
  config.vision.update(image_size=IMAGE_SIZE, num_layers=2)
  config.compressor.kv_layers = (1, 2)
  return config


def train_config(compressor="quecc"):
  """Stage 1 (compressor and projector at lr 1e-3) on one device: 6 steps of 4 rows,
  a checkpoint every 3, logs every step."""
  config = train.default_config()
  config.model = model_config(compressor)
  config.data.update(image_size=IMAGE_SIZE, image_preprocess="siglip")
  config.update(batch_size=4, total_steps=6, log_every=1)
  config.checkpoint.update(every=3, keep=2)
  config.optim.learning_rates.update(vision=0.0, compressor=1e-3, projector=1e-3, llm=0.0)
  config.mesh.update(data=-1, num_devices=1)
  return config


def example(i):
  """The i-th example: dict of numpy arrays, text length 16 or 12."""
  rng = np.random.default_rng(i)
  length = 12 if (i // 2) % 2 else 16
  c = i % 4
  input_ids = rng.integers(3, 1000, length).astype(np.int32)
  input_ids[1 + i % 3] = IMAGE_TOKEN_ID
  input_ids[-ANSWER_LENGTH:] = [10 + c, 20 + c, 2]
  labels = np.full(length, -100, np.int32)
  labels[-ANSWER_LENGTH:] = input_ids[-ANSWER_LENGTH:]
  pixels = rng.normal(0, 0.1, (IMAGE_SIZE, IMAGE_SIZE, 3)).astype(np.float32)
  half = IMAGE_SIZE // 2
  pixels[(c // 2) * half:(c // 2 + 1) * half, (c % 2) * half:(c % 2 + 1) * half] += 1.0
  return dict(input_ids=input_ids, labels=labels, pixels=pixels,
              question_ids=np.array([5, 6, 7, 8], np.int32))


def collate(examples):
  """Right-pads prompts to the longest with (0, -100, mask 0)."""
  length = max(len(e["input_ids"]) for e in examples)
  pad = lambda x, value: np.pad(x, (0, length - len(x)), constant_values=value)
  return dict(
      input_ids=np.stack([pad(e["input_ids"], 0) for e in examples]),
      labels=np.stack([pad(e["labels"], -100) for e in examples]),
      attention_mask=np.stack([pad(np.ones(len(e["input_ids"]), np.int32), 0) for e in examples]),
      pixels=np.stack([e["pixels"] for e in examples]),
      question_ids=np.stack([e["question_ids"] for e in examples]),
      question_mask=np.ones((len(examples), QUESTION_LENGTH), np.int32))


class SyntheticDataset:
  """`dataset` for vlm_jax.train.train: host h's batch k holds examples
  k*B + h*b ... k*B + h*b + b - 1 (b rows per host, B over all hosts), so any
  number of hosts forms the same global batches."""

  def __init__(self, data_config, *, shard_index, shard_count):
    self.rows = data_config.batch_size
    self.offset = shard_index * self.rows
    self.global_rows = shard_count * self.rows

  def __iter__(self):
    return SyntheticIterator(self)


class SyntheticIterator:

  def __init__(self, dataset):
    self.dataset = dataset
    self.batches = 0
    self.counters = {"truncated": 0}

  def __next__(self):
    d = self.dataset
    first = self.batches * d.global_rows + d.offset
    batch = collate([example(i) for i in range(first, first + d.rows)])
    self.batches += 1
    self.counters["truncated"] += 1  # a stand-in count that grows by one per batch
    return batch

  def get_state(self):
    return {"batches": self.batches, "counters": dict(self.counters)}

  def set_state(self, state):
    self.batches = state["batches"]
    self.counters = dict(state["counters"])


def event_scalars(logdir, tag):
  """{step: value} of `tag` in the TensorBoard event files (TFRecords) under `logdir`."""
  from tensorboardX.proto import event_pb2
  values = {}
  for path in sorted(logdir.glob("events.out.tfevents.*")):
    data, at = path.read_bytes(), 0
    while at < len(data):  # record: length (8 bytes), crc (4), event, crc (4)
      length = int.from_bytes(data[at:at + 8], "little")
      event = event_pb2.Event.FromString(data[at + 12:at + 12 + length])
      at += 16 + length
      values.update({event.step: v.simple_value for v in event.summary.value if v.tag == tag})
  return values
