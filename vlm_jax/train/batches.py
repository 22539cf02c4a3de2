"""Host batches (numpy) -> global jax Arrays sharded over the mesh's data and fsdp axes."""
import jax
import numpy as np
from jax.experimental import multihost_utils

from vlm_jax import sharding
from vlm_jax.models.vlm import IGNORE_INDEX
from vlm_jax.train.step import BATCH_NDIMS

# Padding of each (B, T) field, and which text (prompt or question) sets its length.
PADDING = {"input_ids": (0, 0), "labels": (IGNORE_INDEX, 0), "attention_mask": (0, 0),
           "question_ids": (0, 1), "question_mask": (0, 1)}


def global_batch(local_batch, mesh):
  """This host's rows {name: (B_host, ...)} -> {name: global (B, ...) Array}.

  Bucketing picks the text lengths per host, so on several hosts each host pads
  its prompt and question to the longest among the hosts first.
  """
  missing = sorted(set(BATCH_NDIMS) - set(local_batch))
  if missing:
    raise KeyError(f"batch lacks {missing}; has {sorted(local_batch)}")
  arrays = {k: np.asarray(local_batch[k]) for k in BATCH_NDIMS}
  for name, array in arrays.items():
    if array.ndim != BATCH_NDIMS[name]:
      raise ValueError(f"batch[{name!r}] has shape {array.shape}, "
                       f"expected {BATCH_NDIMS[name]} dims")
  if jax.process_count() > 1:
    arrays = pad_to_longest_host(arrays)
  return {k: jax.make_array_from_process_local_data(sharding.batch_sharding(mesh, x.ndim), x)
          for k, x in arrays.items()}


def pad_to_longest_host(arrays):
  """Right-pads the text fields to the longest prompt / question length over all hosts."""
  lengths = np.array([arrays["input_ids"].shape[1], arrays["question_ids"].shape[1]])
  longest = np.max(multihost_utils.process_allgather(lengths), axis=0)
  padded = dict(arrays)
  for name, (value, which) in PADDING.items():
    x = arrays[name]
    padded[name] = np.pad(x, ((0, 0), (0, longest[which] - x.shape[1])), constant_values=value)
  return padded
