#!/usr/bin/env bash
# Creates a Cloud TPU VM slice.
#
#   launch/create.sh --name NAME --zone ZONE --accelerator TYPE [--version RUNTIME]
#                    [--project PROJECT] [--spot | --reserved] [--dry-run]
#
#   --accelerator   slice type, e.g. v5p-64                      ($TPU_ACCELERATOR)
#   --version       TPU software version; default: the one recommended for the
#                   accelerator generation (v5p: v2-alpha-tpuv5)  ($TPU_VERSION)
#   --spot          spot capacity (cheaper, may be preempted)     ($TPU_SPOT)
#   --reserved      use the project's reservation                 ($TPU_RESERVED)
#   --name, --zone, --project: ($TPU_NAME, $TPU_ZONE, $TPU_PROJECT)
#   --dry-run       print the gcloud command instead of running it

source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

# https://cloud.google.com/tpu/docs/runtimes: the base images for JAX.
default_runtime_version() {
  case "$1" in
    v6e-*) echo v2-alpha-tpuv6e ;;
    v5p-*) echo v2-alpha-tpuv5 ;;
    v5litepod-*) echo v2-alpha-tpuv5-lite ;;
    v2-* | v3-* | v4-*) echo tpu-ubuntu2204-base ;;
    *) die "no default --version for accelerator '$1': pass --version" ;;
  esac
}

parse_flags "name zone project accelerator version spot reserved dry-run" "$@"
require name zone accelerator
if is_true "$TPU_SPOT" && is_true "$TPU_RESERVED"; then
  die "--spot and --reserved exclude each other"
fi
if [[ -z "$TPU_VERSION" ]]; then
  TPU_VERSION="$(default_runtime_version "$TPU_ACCELERATOR")"
fi

capacity=()
if is_true "$TPU_SPOT"; then capacity=(--spot); fi
if is_true "$TPU_RESERVED"; then capacity=(--reserved); fi

tpu_vm create "$TPU_NAME" "--accelerator-type=$TPU_ACCELERATOR" "--version=$TPU_VERSION" \
  ${capacity[@]+"${capacity[@]}"}
