"""Input pipelines: LLaVA-format records, chat templates, images, grain batches."""
from vlm_jax.data.config import default_config
from vlm_jax.data.examples import COUNTERS, IGNORE_INDEX
from vlm_jax.data.images import IMAGE_TRANSFORMS, preprocess_image
from vlm_jax.data.pipeline import make_dataset, make_eval_examples
from vlm_jax.data.records import DataError
from vlm_jax.data.templates import TEMPLATES
from vlm_jax.data.tokenizer import load_tokenizer
