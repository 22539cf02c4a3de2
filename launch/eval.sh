#!/usr/bin/env bash
# Starts `vlm-jax eval` on every worker at once, in the background: each worker answers
# its share of the questions, and worker 0 writes the answers and results. Each worker
# logs to REMOTE_DIR/logs/eval_<hostname>.log (launch/logs.sh --eval).
#
#   launch/eval.sh --name NAME --zone ZONE --config CONFIG --checkpoints CKPTS --workdir DIR
#                  [--project PROJECT] [--remote-dir DIR] [--dry-run] [-- EVAL_ARGS...]
#
#   --config        evaluation config, relative to the checkout      ($VLM_JAX_CONFIG)
#   --checkpoints   comma-separated, readable by every worker: training workdirs on GCS
#                   (gs://BUCKET/RUN, @STEP for a step) or model folders on each worker
#                                                                     ($VLM_JAX_CHECKPOINTS)
#   --workdir       where worker 0 writes answers and results: a folder on its disk,
#                   relative to the checkout                         ($VLM_JAX_WORKDIR)
#   --remote-dir    checkout made by launch/setup.sh (default vlm_jax) ($VLM_JAX_REMOTE_DIR)
#   --name, --zone, --project: ($TPU_NAME, $TPU_ZONE, $TPU_PROJECT)
#   --dry-run       print the gcloud command instead of running it
#   Words after `--` are passed on to `vlm-jax eval`, e.g. -- --budgets 1,4 --set dtype=bfloat16

source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

parse_flags "name zone project config checkpoints workdir remote-dir dry-run" "$@"
require name zone config checkpoints workdir
: "${VLM_JAX_REMOTE_DIR:=vlm_jax}"
if [[ "$VLM_JAX_WORKDIR" == *://* ]]; then
  die "--workdir is written with local files on worker 0: give a folder on its disk, got '$VLM_JAX_WORKDIR'"
fi

evaluate="$(shell_join vlm-jax eval --config "$VLM_JAX_CONFIG" --checkpoints "$VLM_JAX_CHECKPOINTS" \
  --workdir "$VLM_JAX_WORKDIR" ${PASSTHROUGH_ARGS[@]+"${PASSTHROUGH_ARGS[@]}"})"
# Only the nohup command goes to the background, so ssh returns at once.
on_workers all "cd $(shell_quote "$VLM_JAX_REMOTE_DIR") && . .venv/bin/activate && mkdir -p logs \
&& { nohup $evaluate > $EVAL_LOG 2>&1 < /dev/null & }"
