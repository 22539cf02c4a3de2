"""Config files: `get_config(arg)` in a Python file, selected by path or preset name.

`load("configs/train/tiny.py:size=s")` imports the file and calls `get_config("size=s")`;
`preset("qwen1_5_7b")` loads `configs/models/qwen1_5_7b.py`.
"""
import importlib.util
import os
import sys

import ml_collections

from vlm_jax.errors import BadValueError, UnknownNameError

CONFIG_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                          "configs")


def load(spec):
  """'path/to/file.py[:arg]' -> the ConfigDict its get_config(arg) returns."""
  path, _, arg = spec.partition(":")
  if not os.path.isfile(path):
    raise FileNotFoundError(f"no config file {path!r}" + _files_beside(path))
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
  """A model preset from configs/models/ by name, e.g. 'qwen1_5_7b' or 'tiny_llm:size=s'."""
  file, _, arg = name.partition(":")
  path = os.path.join(CONFIG_DIR, "models", file + ".py")
  if not os.path.exists(path):
    names = [f[:-3] for f in _config_files(os.path.join(CONFIG_DIR, "models"))]
    raise UnknownNameError(f"unknown model preset {file!r}; known: {', '.join(names)}")
  return load(path + (":" + arg if arg else ""))


def one_of(what, value, known):
  """`value` if it is among `known` (names, or a mapping's keys); an error naming them if not."""
  if value not in known:
    raise UnknownNameError(f"unknown {what} {value!r}; known: {', '.join(map(str, known))}")
  return value


def parse_arg(arg, **defaults):
  """'a=1,b=x' -> ConfigDict with `defaults` overridden, values cast to the default's type."""
  out = ml_collections.ConfigDict(defaults)
  for item in filter(None, (arg or "").split(",")):
    key, sep, value = item.partition("=")
    if not sep:
      raise BadValueError(f"config argument {item!r} is not KEY=VALUE; keys: {', '.join(defaults)}")
    if key not in defaults:
      raise UnknownNameError(f"unknown config argument {key!r}; known: {', '.join(defaults)}")
    out[key] = _cast(key, value, defaults[key])
  return out


def _cast(key, value, default):
  if default is None:
    return value
  try:
    return type(default)(value)
  except ValueError:
    raise BadValueError(f"config argument {key}={value!r} is not of the type of its default "
                        f"{default!r} ({type(default).__name__})") from None


def _config_files(folder):
  return sorted(f for f in os.listdir(folder) if f.endswith(".py") and not f.startswith("_"))


def _files_beside(path):
  """'; FOLDER holds: a.py, b.py' when the folder of a missing config file exists."""
  folder = os.path.dirname(path) or "."
  if not os.path.isdir(folder):
    return ""
  return f"; {folder} holds: {', '.join(_config_files(folder)) or 'no config files'}"
