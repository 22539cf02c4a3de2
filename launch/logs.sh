#!/usr/bin/env bash
# Shows the training logs of one worker or of all, each line prefixed with the
# worker's hostname.
#
#   launch/logs.sh --name NAME --zone ZONE [--worker all|N] [--lines N] [--follow]
#                  [--eval] [--project PROJECT] [--remote-dir DIR] [--dry-run]
#
#   --worker        "all" (default) or a worker index               ($TPU_WORKER)
#   --lines         last lines to show (default 100)                ($LOG_LINES)
#   --follow        keep printing new lines until Ctrl-C            ($LOG_FOLLOW)
#   --eval          the evaluation logs of launch/eval.sh instead   ($LOG_EVAL)
#   --remote-dir    checkout made by launch/setup.sh (default vlm_jax) ($VLM_JAX_REMOTE_DIR)
#   --name, --zone, --project: ($TPU_NAME, $TPU_ZONE, $TPU_PROJECT)
#   --dry-run       print the gcloud command instead of running it

source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

parse_flags "name zone project worker lines follow eval remote-dir dry-run" "$@"
require name zone
: "${TPU_WORKER:=all}"
: "${LOG_LINES:=100}"
: "${VLM_JAX_REMOTE_DIR:=vlm_jax}"
[[ "$TPU_WORKER" =~ ^(all|[0-9]+)$ ]] || die "--worker must be 'all' or a worker index, got '$TPU_WORKER'"
[[ "$LOG_LINES" =~ ^[0-9]+$ ]] || die "--lines must be a number, got '$LOG_LINES'"

tail="tail -n $LOG_LINES"
if is_true "$LOG_FOLLOW"; then tail+=" -F"; fi
log="$TRAIN_LOG"
if is_true "$LOG_EVAL"; then log="$EVAL_LOG"; fi
on_workers "$TPU_WORKER" "cd $(shell_quote "$VLM_JAX_REMOTE_DIR") && $tail $log | sed -u \"s/^/[\$(hostname)] /\""
