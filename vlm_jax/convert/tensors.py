"""Reads checkpoint tensors one at a time from safetensors (sharded or not) or PyTorch .bin."""
import glob
import json
import os

import numpy as np


class MissingTensorError(KeyError):
  pass


class TensorReader:
  """Name -> float32 numpy array, read lazily, one tensor at a time."""

  def __init__(self, folder):
    self.folder = str(folder)
    self._files = _weight_files(folder)  # tensor name -> file
    self._open = {}
    self.used = set()

  def add_fallback(self, folder):
    """Also reads the tensors of `folder` that the first folder does not hold."""
    self._files = {**_weight_files(folder), **self._files}
    self.folder += f" (and {folder})"

  def names(self):
    return set(self._files)

  def get(self, name):
    if name not in self._files:
      raise MissingTensorError(f"tensor {name!r} is missing from the checkpoint in {self.folder}")
    path = self._files[name]
    if path.endswith(".bin"):
      tensor = _torch_load(path)[name].float().numpy()
    else:
      if path not in self._open:
        from safetensors import safe_open
        self._open[path] = safe_open(path, framework="flax")
      tensor = np.asarray(self._open[path].get_tensor(name), dtype=np.float32)
    self.used.add(name)
    return tensor

  def unused(self):
    return sorted(self.names() - self.used)


def _weight_files(folder):
  """{tensor name: file} for a folder of safetensors (index-aware) or PyTorch .bin files."""
  index = os.path.join(folder, "model.safetensors.index.json")
  if os.path.exists(index):
    with open(index) as f:
      return {n: os.path.join(folder, f) for n, f in json.load(f)["weight_map"].items()}
  files = {}
  for path in sorted(glob.glob(os.path.join(folder, "*.safetensors"))):
    files.update({n: path for n in _safetensors_names(path)})
  for path in sorted(glob.glob(os.path.join(folder, "*.bin"))):
    files.update({n: path for n in _torch_load(path)})
  if not files:
    raise FileNotFoundError(f"no *.safetensors or *.bin weights in {folder}")
  return files


def _safetensors_names(path):
  from safetensors import safe_open
  with safe_open(path, framework="flax") as f:
    return list(f.keys())


_TORCH_CACHE = {}


def _torch_load(path):
  """A .bin state dict, memory-mapped; weights_only: loading never runs code."""
  if path not in _TORCH_CACHE:
    try:
      import torch
    except ImportError as e:
      raise ImportError(f"reading {path} needs torch (pip install torch); "
                        "safetensors checkpoints do not") from e
    _TORCH_CACHE[path] = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
  return _TORCH_CACHE[path]
