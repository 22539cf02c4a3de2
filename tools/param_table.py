"""Prints the Markdown table of model presets and their parameter counts (jax.eval_shape, no memory)."""
import os

from vlm_jax import configs, models


def main():
  names = sorted(f[:-3] for f in os.listdir(os.path.join(configs.CONFIG_DIR, "models"))
                 if f.endswith(".py") and not f.startswith("_") and f != "vlm.py")
  print("| preset | kind | layers | hidden | parameters |")
  print("|---|---|---|---|---:|")
  for name in names:
    config = configs.preset(name)
    part = config[config.kind]
    print(f"| `{name}` | {config.kind} | {part.num_layers} | {part.hidden_size} | "
          f"{models.param_count(config):,} |")


if __name__ == "__main__":
  main()
