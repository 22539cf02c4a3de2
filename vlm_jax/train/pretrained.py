"""Starting points: a finished run or converted model checkpoints.

`init_from`: a training workdir (its latest checkpoint, e.g. stage 1 for stage
2) or a converted `vlm` checkpoint; `init_llm_from` / `init_vision_from`: a
converted `llm` / `vision` checkpoint (`vlm-jax convert`). A checkpoint's own
architecture wins over the config's preset; the config keeps its compute dtype,
remat policy and attention implementation.
"""
import json
import logging
import os

import jax
import ml_collections
import orbax.checkpoint as ocp
from etils import epath
from jax.sharding import NamedSharding, PartitionSpec, SingleDeviceSharding

from vlm_jax import checkpoints, errors, models
from vlm_jax.train import multi_budget
from vlm_jax.train import state as state_lib
from vlm_jax.train.checkpointing import Checkpointer

log = logging.getLogger(__name__)

RUN_CONFIG = "config.json"  # the training config, in a training workdir
RUN_CHECKPOINTS = "checkpoints"
KEPT_FROM_CONFIG = ("dtype", "remat", "attention")  # compute choices, not architecture
PROCESSOR = "processor"  # how the model is fed (vlm_jax.data.processor), not architecture
MULTI_BUDGET_FIELDS = ("compressor.budget", "compressor.budgets", "compressor.grid")


def absolute(path):
  """An epath of `path`, made absolute where local (orbax needs it; gs:// ones already are)."""
  return epath.Path(path if "://" in str(path) else os.path.abspath(path))


def parse_spec(spec):
  """A model spec -> (path, step): a model folder (step None), a training workdir (its
  latest step: None) or `DIR@STEP` of one; BadValueError for a bad or misplaced @STEP."""
  path, at, step = spec.rpartition("@") if "@" in spec else (spec, "", "")
  if not at:
    return path, None
  if not is_training_run(path):
    raise errors.BadValueError(f"{spec}: @STEP names a step of a training workdir, and {path} "
                               "is not one")
  if not step.isdigit():
    raise errors.BadValueError(f"{spec}: the step after @ must be a number, got {step!r}")
  return path, int(step)


def is_training_run(path):
  return (epath.Path(path) / RUN_CHECKPOINTS).exists()


def model_config(config):
  """config.model with the architecture of the checkpoints config.init_* name."""
  model = ml_collections.ConfigDict(config.model.to_dict())
  if config.init_from:
    source = _init_from_model(config)
    _check_budgets(source, model, config.init_from)
    # A multi-budget model continues a single-budget one: its own budgets win.
    kept = MULTI_BUDGET_FIELDS if multi_budget.budgets(model) else ()
    model = _adopt(model, source, config.init_from, must_match=("compressor.", "projector."),
                   kept=kept)
  for group, path in (("llm", config.init_llm_from), ("vision", config.init_vision_from)):
    if path:
      model[group] = _adopt(model[group], _converted_config(path, group)[group], path)
  return model


def _init_from_model(config):
  """The architecture of the checkpoint config.init_from names."""
  if is_training_run(config.init_from):
    return _architecture(read_run_config(config.init_from).model)
  return _architecture(_converted_config(config.init_from, "vlm"))


def _check_budgets(source, model, path):
  theirs, ours = multi_budget.budgets(source), multi_budget.budgets(model)
  if theirs and theirs != ours:
    raise errors.BadValueError(f"{path} holds a multi-budget model of budgets {theirs}; "
                               f"continue it with those budgets, not {ours or 'a single one'}")


def checkpoint_processor(config):
  """(processor, path) of the converted checkpoint config.init_from names, else (None, None).

  A converted model's processor binds its fine-tuning data; a training run's does not, as
  the next stage of a recipe may change template or preprocessing (LLaVA's stage 1 to 2).
  """
  if not config.init_from or is_training_run(config.init_from):
    return None, None
  return _converted_config(config.init_from, "vlm").get(PROCESSOR), config.init_from


def load(config, params, param_shardings):
  """`params` with the groups config.init_* name replaced, placed by `param_shardings`."""
  if config.init_from:
    params = _load_init_from(config, params, param_shardings)
  for group, path in (("llm", config.init_llm_from), ("vision", config.init_vision_from)):
    if path:
      params = {**params, group: _load_converted(path, params[group], param_shardings[group])}
  return params


def _load_init_from(config, params, param_shardings):
  """`params` replaced by those of config.init_from, widened when a multi-budget model
  continues a single-budget checkpoint (multi_budget.widen_params)."""
  model = model_config(config)
  source = _init_from_model(config)
  widen = bool(multi_budget.budgets(model)) and not multi_budget.budgets(source)
  expected, shardings = params, param_shardings
  if widen:
    at_source = ml_collections.ConfigDict(model.to_dict())
    for key in MULTI_BUDGET_FIELDS:
      _set(at_source, key, _get(source, key))
    expected = state_lib.unbox_shapes(models.abstract_params(at_source))
    replicated = lambda s: NamedSharding(s.mesh, PartitionSpec())
    shardings = jax.tree.map(lambda x, y, s: s if x.shape == y.shape else replicated(s),
                             expected, params, param_shardings)
  if is_training_run(config.init_from):
    loaded = _restore_run_params(config.init_from, _placed(expected, shardings))
  else:
    loaded = _load_converted(config.init_from, expected, shardings)
  if not widen:
    return loaded
  log.info("%s: a single-budget checkpoint, continued at budgets %s", config.init_from,
           multi_budget.budgets(model))
  return jax.device_put(multi_budget.widen_params(loaded, params, model), param_shardings)


def load_run(workdir, step=None, param_shardings=None):
  """(model config, float32 params) of a training run's checkpoint at `step` (default:
  the latest), placed by `param_shardings` (default: on the first device)."""
  model = read_run_config(workdir).model
  shapes = state_lib.unbox_shapes(models.abstract_params(model))
  if param_shardings is None:
    param_shardings = jax.tree.map(lambda _: SingleDeviceSharding(jax.devices()[0]), shapes)
  return model, _restore_run_params(workdir, _placed(shapes, param_shardings), step)


def check_resumable(workdir, model):
  """Raises unless the run in `workdir` trained the architecture of model config `model`."""
  theirs = _flatten(_architecture(read_run_config(workdir).model))
  ours = _flatten(_architecture(model))
  differing = [k for k in _differing(ours, theirs) if k.split(".")[-1] not in KEPT_FROM_CONFIG]
  if differing:
    raise ValueError(f"{workdir} holds a run of another model, so it cannot resume: " + ", ".join(
        f"{k}={theirs.get(k)!r} (config: {ours.get(k)!r})" for k in differing))


def read_run_config(workdir):
  return ml_collections.ConfigDict(json.loads((epath.Path(workdir) / RUN_CONFIG).read_text()))


def _architecture(model):
  """A model config without its processor."""
  return ml_collections.ConfigDict({k: v for k, v in model.items() if k != PROCESSOR})


def _placed(shapes, shardings):
  return jax.tree.map(lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s), shapes,
                      shardings)


def _restore_run_params(workdir, abstract_params, step=None):
  checkpointer = Checkpointer(absolute(workdir) / RUN_CHECKPOINTS, every=1, keep=None,
                              read_only=True)
  try:
    if checkpointer.latest_step() is None:
      raise FileNotFoundError(f"{workdir} holds no checkpoint")
    return checkpointer.restore_params(abstract_params, step)
  finally:
    checkpointer.close()


def _converted_config(path, kind):
  config = checkpoints.load_config(path)
  if config.kind != kind:
    raise ValueError(f"{path} is a {config.kind!r} checkpoint, expected {kind!r}")
  return config


def _adopt(ours, theirs, path, must_match=(), kept=()):
  """`theirs` with our KEPT_FROM_CONFIG fields (at any depth) and our `kept` (dotted keys).

  Differences are logged, or raise for keys starting with a `must_match` prefix.
  """
  adopted = ml_collections.ConfigDict(json.loads(theirs.to_json()))
  for key, value in _flatten(ours).items():
    if key.split(".")[-1] in KEPT_FROM_CONFIG:
      _set(adopted, key, value)
  for key in kept:
    _set(adopted, key, _get(ours, key))
  ours_flat, theirs_flat = _flatten(ours), _flatten(adopted)
  differing = _differing(ours_flat, theirs_flat)
  mismatched = [k for k in differing if k.startswith(must_match)]
  if mismatched:
    raise ValueError(f"{path} holds a model with a different " + ", ".join(
        f"{k}={theirs_flat.get(k)!r} (config: {ours_flat.get(k)!r})" for k in mismatched))
  for key in differing:
    log.warning("%s: %s = %r from the checkpoint (config said %r)", path, key,
                theirs_flat.get(key), ours_flat.get(key))
  return adopted


def _differing(ours, theirs):
  """Keys whose values differ between two flattened configs."""
  return [k for k in sorted(set(ours) | set(theirs)) if ours.get(k) != theirs.get(k)]


def _flatten(config, prefix=""):
  out = {}
  for key, value in config.items():
    if isinstance(value, ml_collections.ConfigDict):
      out.update(_flatten(value, f"{prefix}{key}."))
    else:
      out[prefix + key] = list(value) if isinstance(value, tuple) else value
  return out


def _get(config, dotted):
  for name in dotted.split("."):
    config = config.get(name)
  return config


def _set(config, dotted, value):
  *parents, name = dotted.split(".")
  for parent in parents:
    config = config[parent]
  config[name] = value


def _load_converted(path, expected, shardings):
  """The params of converted checkpoint `path` (checkpoints.save's layout), restored
  straight into the shapes of `expected` and placed by `shardings`."""
  target = _placed(expected, shardings)
  try:
    with ocp.StandardCheckpointer() as checkpointer:
      return checkpointer.restore(epath.Path(path).absolute() / "params", target)
  except (ValueError, KeyError) as error:
    raise ValueError(f"the params in {path} do not fit the model: {error}") from error
