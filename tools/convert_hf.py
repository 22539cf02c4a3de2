"""Convert a Hugging Face model folder: `python tools/convert_hf.py SRC DST` (= `vlm-jax convert`)."""
import sys

from vlm_jax import cli

if __name__ == "__main__":
  sys.exit(cli.main(["convert", *sys.argv[1:]]))
