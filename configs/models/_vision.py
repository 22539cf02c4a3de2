"""Shared by the vision presets."""
from vlm_jax.models import vision


def tower(family, image, patch, hidden, layers, heads, mlp):
  cfg = vision.default_config()
  cfg.update(family=family, image_size=image, patch_size=patch, hidden_size=hidden,
             intermediate_size=mlp, num_layers=layers, num_heads=heads,
             layer_norm_eps=1e-6 if family == "siglip" else 1e-5,
             hidden_act="gelu_pytorch_tanh" if family == "siglip" else "quick_gelu")
  return cfg
