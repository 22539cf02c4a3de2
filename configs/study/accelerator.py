"""The built-in study on one accelerator (a GPU or a TPU host): the CPU default's design
(configs/study/tiny.py) on a larger grid, trained longer.

`accelerator.py[:arg]` takes tiny.py's arguments, over these defaults: LLM sizes
xs+s+m+l, V ∈ {1, 4, 16, 64}, 4,000 steps of batch 128 per size (16x the CPU
default's examples, meant to be enough for l; whether the smaller sizes then still fall
short of the 96 facts, as the sizes must to differ, is not measured), a tower trained
for 2,000 steps, 1,000 questions per task, one run at a time (each takes every device of
the host).

Expected time (not measured; no accelerator was at hand): these models are bound by
step latency, not FLOPs, on an accelerator; at 5-10 ms per step the 18,000 steps
take 2-3 minutes, with compiles and evaluation 5-10 minutes.
"""
from tiny import get_config as cpu_config

DEFAULTS = "sizes=xs+s+m+l,steps=4000,batch=128,tower_steps=2000,eval_examples=1000,workers=1"


def get_config(arg=None):
  return cpu_config(f"{DEFAULTS},{arg}" if arg else DEFAULTS)
