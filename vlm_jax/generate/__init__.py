"""Batched generation with a fixed-size KV cache.

`generate(config, params, input_ids, attention_mask, ...)` for one batch;
`Generator` keeps the jitted prefill / decode (and single `step`) so an
evaluation loop compiles once per prompt-length bucket, on one device or a
(data, fsdp, tensor) mesh (`sharded`: the programs `vlm-jax compile` compiles).
"""
from vlm_jax.generate.decoding import DecodeState, Settings, decode, decode_step, prefill
from vlm_jax.generate.generator import Generator, generate
from vlm_jax.generate.sampling import next_token, nucleus
