"""Streams tensors into safetensors files: one tensor in memory at a time.

Above `max_shard_bytes` the tensors go into `model-0000i-of-0000n.safetensors` shards
listed by `model.safetensors.index.json` (what transformers' save_pretrained writes),
else into one `model.safetensors`. Each file's header is planned from the shapes, then
every tensor is built, converted, written and released.
"""
import json
import os
import struct

import ml_dtypes
import numpy as np

# dtype name -> (safetensors' dtype code, the little-endian numpy dtype)
DTYPES = {"float32": ("F32", np.dtype("<f4")), "bfloat16": ("BF16", np.dtype(ml_dtypes.bfloat16))}
SINGLE_FILE = "model.safetensors"
INDEX_FILE = "model.safetensors.index.json"
HEADER_ALIGNMENT = 8


def write(folder, tensors, leaves, dtype, max_shard_bytes):
  """Writes `tensors` (vlm_jax.export.tensors.Tensor) into `folder`, built from `leaves`
  (vlm_jax.export.source.Leaves), as `dtype`. -> the files written."""
  code, np_dtype = DTYPES[dtype]
  shards = _shards(tensors, np_dtype.itemsize, max_shard_bytes)
  files = [SINGLE_FILE] if len(shards) == 1 else [
      f"model-{i:05d}-of-{len(shards):05d}.safetensors" for i in range(1, len(shards) + 1)]
  for file, shard in zip(files, shards):
    _write_file(os.path.join(folder, file), shard, leaves, code, np_dtype)
  if len(shards) > 1:
    weight_map = {t.name: file for file, shard in zip(files, shards) for t in shard}
    total = sum(_nbytes(t, np_dtype.itemsize) for t in tensors)
    with open(os.path.join(folder, INDEX_FILE), "w") as f:
      json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=2)
    files.append(INDEX_FILE)
  return files


def _nbytes(tensor, itemsize):
  return int(np.prod(tensor.shape)) * itemsize


def _shards(tensors, itemsize, max_bytes):
  """Consecutive groups of at most max_bytes (a bigger tensor alone in its own)."""
  shards, size = [[]], 0
  for tensor in tensors:
    nbytes = _nbytes(tensor, itemsize)
    if shards[-1] and size + nbytes > max_bytes:
      shards.append([])
      size = 0
    shards[-1].append(tensor)
    size += nbytes
  return shards


def _write_file(path, tensors, leaves, code, np_dtype):
  header, offset = {"__metadata__": {"format": "pt"}}, 0
  for tensor in tensors:
    end = offset + _nbytes(tensor, np_dtype.itemsize)
    header[tensor.name] = {"dtype": code, "shape": list(tensor.shape),
                           "data_offsets": [offset, end]}
    offset = end
  encoded = json.dumps(header, separators=(",", ":")).encode()
  encoded += b" " * (-len(encoded) % HEADER_ALIGNMENT)
  with open(path, "wb") as f:
    f.write(struct.pack("<Q", len(encoded)) + encoded)
    for tensor in tensors:
      f.write(_data(tensor, leaves, np_dtype))


def _data(tensor, leaves, np_dtype):
  """The tensor's bytes; nothing of it (or of its params) outlives the write."""
  array = tensor.build(leaves.get(tensor.paths))
  if array.shape != tensor.shape:
    raise ValueError(f"{tensor.name}: built shape {array.shape}, planned {tensor.shape}")
  return np.asarray(array, np_dtype, order="C").reshape(-1).view(np.uint8).data
