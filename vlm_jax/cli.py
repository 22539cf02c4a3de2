"""The `vlm-jax` console script: one subcommand per module in vlm_jax.commands.

Each command module defines `add_arguments(parser)` and `run(args) -> int`. Bad input
(vlm_jax.errors.UserError, a missing file or folder) ends a command with one line on
stderr and exit status 2; `vlm-jax --debug COMMAND ...` shows its traceback instead.
"""
import argparse
import glob
import importlib
import importlib.metadata
import importlib.util
import os
import pkgutil
import sys

from vlm_jax import distributed, errors

# name -> module under vlm_jax.commands, imported only when the command runs.
COMMANDS = {
    "compile": "compile",
    "convert": "convert",
    "eval": "eval",
    "export": "export",
    "fit": "fit",
    "flops": "flops",
    "plan": "plan",
    "study": "study",
    "train": "train",
}
EXIT_USER_ERROR = 2  # as for argparse's usage errors
USER_ERRORS = (errors.UserError, FileNotFoundError, NotADirectoryError, IsADirectoryError)
# JAX's GPU platforms: the device files that show such a GPU (those JAX looks for), and
# the name of JAX's plugin for it.
GPU_PLATFORMS = {
    "cuda": (("/dev/nvidia0", "/dev/nvidiactl", "/dev/dxg"), "xla_cuda"),
    "rocm": (("/dev/kfd",), "xla_rocm"),
}


def main(argv=None):
  _skip_absent_tpu()
  parser = argparse.ArgumentParser(prog="vlm-jax", description=__doc__.splitlines()[0])
  parser.add_argument("--debug", action="store_true",
                      help="show the traceback of bad-input errors instead of one line")
  subparsers = parser.add_subparsers(dest="command", required=True)
  modules = {}
  for name, module_name in COMMANDS.items():
    module = importlib.import_module(f"vlm_jax.commands.{module_name}")
    sub = subparsers.add_parser(name, help=module.__doc__.splitlines()[0])
    module.add_arguments(sub)
    modules[name] = module
  args = parser.parse_args(argv)
  try:
    return modules[args.command].run(args) or 0
  except USER_ERRORS as error:
    if args.debug:
      raise
    print(f"vlm-jax {args.command}: error: {errors.message(error)}", file=sys.stderr)
    return EXIT_USER_ERROR


def _skip_absent_tpu():
  """Keeps JAX off the TPU backend on a machine without TPU chips.

  With libtpu installed (the aot extra, for compiling TPU programs on any host), JAX
  initializes a TPU backend beside the others, and where there is no TPU libtpu prints
  its failure to stderr. Naming the platforms skips it; `vlm-jax compile` still loads
  libtpu itself for its topologies. A JAX_PLATFORMS of the user's own wins.
  """
  if "JAX_PLATFORMS" in os.environ or importlib.util.find_spec("libtpu") is None:
    return
  if not distributed.has_tpu_chips():
    os.environ["JAX_PLATFORMS"] = _platforms_without_tpu()


def _platforms_without_tpu():
  """What JAX would choose, less the TPU: each GPU platform with both its devices and
  JAX's plugin for it, then the CPU."""
  gpus = [platform for platform, (device_files, plugin) in GPU_PLATFORMS.items()
          if _any_file(device_files) and _has_jax_plugin(plugin)]
  return ",".join(gpus + ["cpu"])


def _any_file(patterns):
  return any(glob.glob(pattern) for pattern in patterns)


def _has_jax_plugin(prefix):
  """Whether JAX finds a plugin named `prefix*`: in the jax_plugins namespace package or
  as a jax_plugins entry point."""
  names = [entry.name for entry in importlib.metadata.entry_points(group="jax_plugins")]
  namespace = importlib.util.find_spec("jax_plugins")
  if namespace is not None:
    names += [module.name
              for module in pkgutil.iter_modules(namespace.submodule_search_locations)]
  return any(name.startswith(prefix) for name in names)


if __name__ == "__main__":
  sys.exit(main())
