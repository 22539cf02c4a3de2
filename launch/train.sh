#!/usr/bin/env bash
# Starts `vlm-jax train` on every worker at once, in the background; each
# worker writes its own log, REMOTE_DIR/logs/train_<hostname>.log (launch/logs.sh).
#
#   launch/train.sh --name NAME --zone ZONE --config CONFIG --workdir gs://BUCKET/RUN
#                   [--project PROJECT] [--remote-dir DIR] [--dry-run] [-- TRAIN_ARGS...]
#
#   --config        training config, relative to the checkout       ($VLM_JAX_CONFIG)
#   --workdir       checkpoints and metrics; on GCS so that every worker sees
#                   the same one                                     ($VLM_JAX_WORKDIR)
#   --remote-dir    checkout made by launch/setup.sh (default vlm_jax) ($VLM_JAX_REMOTE_DIR)
#   --name, --zone, --project: ($TPU_NAME, $TPU_ZONE, $TPU_PROJECT)
#   --dry-run       print the gcloud command instead of running it
#   Words after `--` are passed on to `vlm-jax train`.

source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

parse_flags "name zone project config workdir remote-dir dry-run" "$@"
require name zone config workdir
: "${VLM_JAX_REMOTE_DIR:=vlm_jax}"
if [[ "$VLM_JAX_WORKDIR" != gs://* ]]; then
  die "--workdir must be a gs:// path that every worker shares, got '$VLM_JAX_WORKDIR'"
fi

train="$(shell_join vlm-jax train --config "$VLM_JAX_CONFIG" --workdir "$VLM_JAX_WORKDIR" \
  ${PASSTHROUGH_ARGS[@]+"${PASSTHROUGH_ARGS[@]}"})"
# Only the nohup command goes to the background, so ssh returns at once.
on_workers all "cd $(shell_quote "$VLM_JAX_REMOTE_DIR") && . .venv/bin/activate && mkdir -p logs \
&& { nohup $train > $TRAIN_LOG 2>&1 < /dev/null & }"
