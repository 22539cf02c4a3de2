"""Export to a Hugging Face folder: `python tools/export_hf.py CKPT DST` (= `vlm-jax export`)."""
import sys

from vlm_jax import cli

if __name__ == "__main__":
  sys.exit(cli.main(["export", *sys.argv[1:]]))
