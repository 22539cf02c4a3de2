#!/usr/bin/env bash
# Deletes a Cloud TPU VM slice (gcloud asks for confirmation unless --yes).
#
#   launch/teardown.sh --name NAME --zone ZONE [--project PROJECT] [--yes] [--dry-run]
#
#   --name, --zone, --project: ($TPU_NAME, $TPU_ZONE, $TPU_PROJECT)
#   --yes           delete without asking                         ($ASSUME_YES)
#   --dry-run       print the gcloud command instead of running it

source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

parse_flags "name zone project yes dry-run" "$@"
require name zone

if is_true "$ASSUME_YES"; then
  tpu_vm delete "$TPU_NAME" --quiet
else
  tpu_vm delete "$TPU_NAME"
fi
