"""The `vlm-jax` subcommands (see vlm_jax/cli.py) and their shared argument types."""
import argparse


def comma_separated(cast):
  """An argparse type: 'a,b' -> [cast('a'), cast('b')]; a bad item is a usage error."""
  def parse(text):
    try:
      return [cast(item) for item in text.split(",")]
    except ValueError:
      raise argparse.ArgumentTypeError(
          f"{text!r} is not a comma-separated list of {cast.__name__}s") from None
  return parse
