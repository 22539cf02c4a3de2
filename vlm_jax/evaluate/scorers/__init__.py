"""One module per scorer; importing this package registers them all in SCORERS."""
from vlm_jax.evaluate.scorers import exact_match  # noqa: F401
from vlm_jax.evaluate.scorers import gqa  # noqa: F401
from vlm_jax.evaluate.scorers import mmbench  # noqa: F401
from vlm_jax.evaluate.scorers import mme  # noqa: F401
from vlm_jax.evaluate.scorers import pope  # noqa: F401
from vlm_jax.evaluate.scorers import scienceqa  # noqa: F401
from vlm_jax.evaluate.scorers import seed  # noqa: F401
from vlm_jax.evaluate.scorers import vqa  # noqa: F401
