# Helpers shared by the launch/ scripts, which source this file: flag parsing,
# checks, and running gcloud (or, with --dry-run, printing what would run).
#
# Every flag --some-flag sets a variable whose environment value is the
# default (see flag_variable), so `TPU_ZONE=us-east5-a launch/create.sh ...`
# and `launch/create.sh --zone us-east5-a ...` are the same.

set -euo pipefail

LAUNCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(dirname "$LAUNCH_DIR")"

die() {
  echo "$(basename "$0"): $*" >&2
  exit 2
}

# The variable behind a flag (given without the leading --).
flag_variable() {
  case "$1" in
    name) echo TPU_NAME ;;
    zone) echo TPU_ZONE ;;
    project) echo TPU_PROJECT ;;
    accelerator) echo TPU_ACCELERATOR ;;
    version) echo TPU_VERSION ;;
    spot) echo TPU_SPOT ;;
    reserved) echo TPU_RESERVED ;;
    worker) echo TPU_WORKER ;;
    repo) echo VLM_JAX_REPO ;;
    branch) echo VLM_JAX_BRANCH ;;
    remote-dir) echo VLM_JAX_REMOTE_DIR ;;
    python) echo VLM_JAX_PYTHON ;;
    config) echo VLM_JAX_CONFIG ;;
    workdir) echo VLM_JAX_WORKDIR ;;
    checkpoints) echo VLM_JAX_CHECKPOINTS ;;
    lines) echo LOG_LINES ;;
    follow) echo LOG_FOLLOW ;;
    eval) echo LOG_EVAL ;;
    yes) echo ASSUME_YES ;;
    dry-run) echo DRY_RUN ;;
    *) return 1 ;;
  esac
}

is_switch() {
  case "$1" in
    spot | reserved | follow | eval | yes | dry-run) return 0 ;;
    *) return 1 ;;
  esac
}

is_true() {
  case "$1" in
    "" | 0 | false | no) return 1 ;;
    *) return 0 ;;
  esac
}

# Prints the script's header comment.
usage() {
  sed -n '2,/^$/s/^# \{0,1\}//p' "$0"
}

# parse_flags "ALLOWED FLAGS" "$@": sets the flags' variables; words after a
# lone `--` are kept in PASSTHROUGH_ARGS.
parse_flags() {
  local allowed=" $1 " arg flag value var
  shift
  for flag in $allowed; do  # defined even when the environment leaves it unset
    var="$(flag_variable "$flag")"
    printf -v "$var" '%s' "${!var-}"
  done
  PASSTHROUGH_ARGS=()
  while (($#)); do
    arg="$1"
    shift
    case "$arg" in
      -h | --help) usage; exit 0 ;;
      --) PASSTHROUGH_ARGS=("$@"); break ;;
      --*=*) flag="${arg%%=*}"; flag="${flag#--}"; value="${arg#*=}" ;;
      --*)
        flag="${arg#--}"
        if is_switch "$flag"; then
          value=1
        elif (($#)); then
          value="$1"
          shift
        else
          die "--$flag needs a value"
        fi
        ;;
      *) die "unexpected argument '$arg' (see --help)" ;;
    esac
    [[ "$allowed" == *" $flag "* ]] || die "unknown flag --$flag (see --help)"
    printf -v "$(flag_variable "$flag")" '%s' "$value"
  done
}

# require FLAG...: fails, naming the flag and its variable, when one is unset.
require() {
  local flag var
  for flag in "$@"; do
    var="$(flag_variable "$flag")"
    [[ -n "${!var}" ]] || die "missing --$flag (or set $var)"
  done
}

# One word quoted for a POSIX shell, left bare when that is safe; in
# --flag=value only the value is quoted.
shell_quote() {
  local escaped_quote="'\\''"
  if [[ "$1" =~ ^[A-Za-z0-9_@%+=:,./-]+$ ]]; then
    printf '%s' "$1"
  elif [[ "$1" =~ ^(--[A-Za-z0-9-]+=)(.*)$ ]]; then
    printf '%s' "${BASH_REMATCH[1]}"
    shell_quote "${BASH_REMATCH[2]}"
  else
    printf "'%s'" "${1//\'/$escaped_quote}"
  fi
}

shell_join() {
  local out="" word
  for word in "$@"; do
    out+="${out:+ }$(shell_quote "$word")"
  done
  printf '%s\n' "$out"
}

# Runs a command, or with --dry-run prints it, ready to paste into a shell.
run() {
  if is_true "$DRY_RUN"; then
    shell_join "$@"
  else
    echo "+ $(shell_join "$@")" >&2
    "$@"
  fi
}

# tpu_vm VERB ARGS...: `gcloud compute tpus tpu-vm VERB ARGS` in the chosen zone/project.
tpu_vm() {
  local verb="$1"
  shift
  run gcloud compute tpus tpu-vm "$verb" "$@" "--zone=$TPU_ZONE" ${TPU_PROJECT:+"--project=$TPU_PROJECT"}
}

# on_workers WORKERS COMMAND: runs a shell command over ssh on the workers
# ("all", an index, or a list such as 0,2).
on_workers() {
  tpu_vm ssh "$TPU_NAME" "--worker=$1" "--command=$2"
}

# The per-worker training and evaluation logs, relative to the checkout on the worker.
TRAIN_LOG='logs/train_$(hostname).log'
EVAL_LOG='logs/eval_$(hostname).log'
