"""Print the inference FLOPs of VLM configurations by part, beside the paper's 2·N·(Q + V)."""
import json

from vlm_jax import errors
from vlm_jax.commands import comma_separated


def add_arguments(parser):
  parser.add_argument("--model", action="append", required=True,
                      help="a vlm preset spec (repeatable), e.g. "
                      "vlm:llm=qwen1_5_7b,vision=clip_vit_l_14_336,compressor=quecc,budget=16")
  parser.add_argument("--text-tokens", type=int, required=True, metavar="Q",
                      help="text tokens per query")
  parser.add_argument("--visual-tokens", type=comma_separated(int),
                      help="comma-separated square token budgets (default: each model's own)")
  parser.add_argument("--answer-tokens", type=int, default=0, metavar="A",
                      help="answer tokens decoded per query (default 0: the prefill alone)")
  parser.add_argument("--json", action="store_true", help="print the rows as a JSON list")


def run(args):
  from vlm_jax import flops

  budgets = tuple(args.visual_tokens or (None,))
  with errors.user_input():  # the model specs and token counts are checked as it goes
    rows = flops.table(args.model, args.text_tokens, budgets, args.answer_tokens)
  print(json.dumps(rows) if args.json else flops.format_table(rows))
  return 0
