#!/usr/bin/env bash
# Installs vlm_jax on every worker of a slice, in a virtual environment at
# REMOTE_DIR/.venv, so that `vlm-jax` runs there (launch/train.sh).
#
#   launch/setup.sh --name NAME --zone ZONE [--project PROJECT]
#                   [--repo GIT_URL [--branch BRANCH]] [--remote-dir DIR]
#                   [--python VERSION] [--dry-run]
#
#   --repo          clone this repository on each worker           ($VLM_JAX_REPO)
#                   default: copy the HEAD commit of this checkout (uncommitted
#                   changes are not copied)
#   --branch        branch or tag to clone                          ($VLM_JAX_BRANCH)
#   --remote-dir    checkout on the workers, a folder inside home given relative
#                   to it; deleted and replaced on every run
#                   (default vlm_jax)                               ($VLM_JAX_REMOTE_DIR)
#   --python        Python for the environment; the TPU images ship an older
#                   one, so uv fetches it (default 3.11)            ($VLM_JAX_PYTHON)
#   --name, --zone, --project: ($TPU_NAME, $TPU_ZONE, $TPU_PROJECT)
#   --dry-run       print the commands instead of running them

source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

# Dies unless the checkout names a folder strictly inside the worker's home directory,
# relative to it (as train.sh and logs.sh cd there): setup rm -rf's it.
check_remote_dir() {
  local given="$1" rest part depth=0
  local accepted="give a folder inside the home directory, relative to it (e.g. vlm_jax)"
  [[ -n "$given" ]] || die "--remote-dir is empty: $accepted"
  case "$given" in
    "~" | "~/" | '$HOME' | '$HOME/' | "${HOME-}" | "${HOME-}/")
      die "--remote-dir '$given' is the home directory itself: $accepted" ;;
    /* | \~* | *'$'*)
      die "--remote-dir '$given' is not relative to the home directory: $accepted" ;;
  esac
  rest="$given/"
  while [[ -n "$rest" ]]; do
    part="${rest%%/*}"
    rest="${rest#*/}"
    case "$part" in
      "" | .) ;;
      ..) depth=$((depth - 1)) ;;
      *) depth=$((depth + 1)) ;;
    esac
    ((depth >= 0)) || die "--remote-dir '$given' is outside the home directory: $accepted"
  done
  ((depth > 0)) || die "--remote-dir '$given' is the home directory itself: $accepted"
}

# Defaults before the flags, so that an explicitly empty --remote-dir is refused.
VLM_JAX_REMOTE_DIR="${VLM_JAX_REMOTE_DIR-vlm_jax}"
parse_flags "name zone project repo branch remote-dir python dry-run" "$@"
require name zone
: "${VLM_JAX_PYTHON:=3.11}"
if [[ -n "$VLM_JAX_BRANCH" && -z "$VLM_JAX_REPO" ]]; then
  die "--branch needs --repo"
fi

check_remote_dir "$VLM_JAX_REMOTE_DIR"
dir="$(shell_quote "$VLM_JAX_REMOTE_DIR")"
# The env var lets newer pips install into the user site of a system Python;
# older ones ignore it.
install="PIP_BREAK_SYSTEM_PACKAGES=1 python3 -m pip install --user --quiet uv"
install+=" && cd $dir && python3 -m uv venv --python=$(shell_quote "$VLM_JAX_PYTHON") .venv"
install+=" && python3 -m uv pip install --python=.venv/bin/python -e \".[tpu]\""

if [[ -n "$VLM_JAX_REPO" ]]; then
  clone="git clone --depth=1"
  if [[ -n "$VLM_JAX_BRANCH" ]]; then clone+=" --branch=$(shell_quote "$VLM_JAX_BRANCH")"; fi
  clone+=" $(shell_quote "$VLM_JAX_REPO") $dir"
  on_workers all "rm -rf $dir && $clone && $install"
else
  if [[ -n "$(git -C "$REPO_ROOT" status --porcelain)" ]]; then
    echo "$(basename "$0"): warning: uncommitted changes in $REPO_ROOT are not copied" >&2
  fi
  archive="${TMPDIR:-/tmp}/vlm_jax-$TPU_NAME.tar.gz"
  remote_archive=vlm_jax-src.tar.gz
  run git -C "$REPO_ROOT" archive --format=tar.gz "--output=$archive" HEAD
  tpu_vm scp "$archive" "$TPU_NAME:$remote_archive" --worker=all
  run rm -f "$archive"
  on_workers all "rm -rf $dir && mkdir -p $dir && tar -xzf $remote_archive -C $dir && rm $remote_archive && $install"
fi
