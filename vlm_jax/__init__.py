"""vlm_jax: inference-optimal vision-language models in JAX/Flax."""

__version__ = "0.1.0"
