"""Train a VLM: `vlm-jax train --config configs/train/FILE.py[:ARGS] --workdir DIR`.

Resumes from the latest checkpoint in DIR when there is one. On several hosts,
every host runs the same command (see launch/train.sh).
"""
import logging

from vlm_jax import distributed, errors


def add_arguments(parser):
  parser.add_argument("--config", required=True,
                      help="training config file and its argument, e.g. "
                      "configs/train/tiny.py:size=s,budget=16,task=easy_vqa")
  parser.add_argument("--workdir", required=True,
                      help="checkpoints, metrics and config.json go here (local or gs://)")
  parser.add_argument("--set", dest="overrides", action="append", default=[],
                      metavar="KEY=VALUE",
                      help="override a config field, e.g. --set total_steps=100 "
                      "--set optim.learning_rates.llm=2e-5 (repeatable)")
  parser.add_argument("--until-step", type=int,
                      help="stop (and checkpoint) after this step; the schedule still "
                      "spans all the steps")
  distributed.add_arguments(parser)


def run(args):
  logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(message)s")
  logging.getLogger("vlm_jax").setLevel(logging.INFO)
  with errors.user_input(ValueError):  # incomplete multi-host settings
    distributed.initialize_from_args(args)
  from vlm_jax import data, train
  from vlm_jax.data import processor
  config = checked_config(args.config, args.overrides, args.workdir)
  explicit = processor.explicit_data_keys(args.overrides)
  with errors.user_input(data.DataError):  # a record of the training data that is unusable
    result = train.train(config, args.workdir, until_step=args.until_step, explicit=explicit)
  if result.history:
    print(f"step {result.history[-1]['step']}: loss {result.history[-1]['loss']:.4f}")
  return 0


def checked_config(spec, overrides, workdir):
  """The config `spec` names with `overrides` set, checked before anything is built: its
  values, the checkpoints it starts from, and the run in `workdir` it would resume."""
  from vlm_jax import configs, train
  from vlm_jax.train import pretrained
  with errors.user_input():
    config = train.apply_overrides(configs.load(spec), overrides)
    model = pretrained.model_config(train.resolve(config))
    if pretrained.is_training_run(workdir):
      pretrained.check_resumable(workdir, model)
  return config
