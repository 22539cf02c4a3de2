"""Config files: `get_config(arg)` in a Python file, selected by path or preset name.

`load("configs/train/tiny.py:size=s")` imports the file and calls `get_config("size=s")`;
`preset("qwen1_5_7b")` loads `configs/models/qwen1_5_7b.py`.
"""
import importlib.util
import os
import sys

import ml_collections

CONFIG_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                          "configs")


def load(spec):
  """'path/to/file.py[:arg]' -> the ConfigDict its get_config(arg) returns."""
  path, _, arg = spec.partition(":")
  if not os.path.exists(path):
    raise FileNotFoundError(f"config file {path!r} does not exist")
  module_spec = importlib.util.spec_from_file_location(
      "config_" + os.path.basename(path)[:-3], path)
  module = importlib.util.module_from_spec(module_spec)
  sys.path.insert(0, os.path.dirname(os.path.abspath(path)))  # for helpers beside the file
  try:
    module_spec.loader.exec_module(module)
  finally:
    sys.path.pop(0)
  return module.get_config(arg) if arg else module.get_config()


def preset(name):
  """A model preset from configs/models/ by name, e.g. 'qwen1_5_7b' or 'tiny_llm:s'."""
  file, _, arg = name.partition(":")
  path = os.path.join(CONFIG_DIR, "models", file + ".py")
  if not os.path.exists(path):
    names = sorted(f[:-3] for f in os.listdir(os.path.join(CONFIG_DIR, "models"))
                   if f.endswith(".py") and not f.startswith("_"))
    raise KeyError(f"unknown model preset {file!r}; known: {', '.join(names)}")
  return load(path + (":" + arg if arg else ""))


def parse_arg(arg, **defaults):
  """'a=1,b=x' -> ConfigDict with `defaults` overridden, values cast to the default's type."""
  out = ml_collections.ConfigDict(defaults)
  for item in filter(None, (arg or "").split(",")):
    key, _, value = item.partition("=")
    if key not in defaults:
      raise KeyError(f"unknown config argument {key!r}; known: {', '.join(defaults)}")
    out[key] = type(defaults[key])(value) if defaults[key] is not None else value
  return out
