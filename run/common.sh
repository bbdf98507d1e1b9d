# Shared settings of the run/ recipes (sourced, never executed). Every value is an environment
# variable whose default is the paper's setting (Qwen2.5-VL-3B-Instruct, MIMIC-CXR, GPUs);
# override per run, e.g.
#   DATASET=iu-xray NPROC_PER_NODE=4 DEEPSPEED=zero3 bash run/editgrpo.sh
#   MODEL_FAMILY=qwen3_vl bash run/sft.sh        # Qwen3-VL-4B-Instruct, qwen3_vl_cxr, its pixel bounds
# Recipes append their own arguments and then "$@", so any swift flag can be added or
# overridden on the command line (argparse keeps the last value).
#
# DRY_RUN=1 prints the command (environment + swift argv, shell-quoted, one line) instead of
# running it; tests/test_recipes.py parses that line with ms-swift's own argument classes.

RUN_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(dirname "$RUN_DIR")"
EDITGRPO_PLUGIN="$REPO_ROOT/swift_plugins/editgrpo/plugin.py"
if [[ -z "${SWIFT:-}" ]]; then
    if [[ -x "$REPO_ROOT/.venv/bin/swift" ]]; then SWIFT="$REPO_ROOT/.venv/bin/swift"; else SWIFT=swift; fi
fi
if [[ -z "${PYTHON:-}" ]]; then   # the project's own helpers (run/peers.sh)
    if [[ -x "$REPO_ROOT/.venv/bin/python" ]]; then PYTHON="$REPO_ROOT/.venv/bin/python"; else PYTHON=python3; fi
fi

# ---- data set presets (docs/algorithm.md §8) ------------------------------------------------
# DATASET is the `editgrpo convert` name; the converted files live in
# $EDITGRPO_DATA_DIR/<name with _>/{train,validation,test}.jsonl and are registered in swift as
# <name with _>_editgrpo (datasets_registry/registration.py).
DATASET="${DATASET:-mimic-cxr}"
case "$DATASET" in
    mimic-cxr)   _images=6 _sft_epochs=2 _rl_steps=1000 ;;
    rexgradient) _images=6 _sft_epochs=1 _rl_steps=600 ;;
    iu-xray)     _images=2 _sft_epochs=1 _rl_steps=-1 ;;  # -1: one epoch
    padchest-gr) _images=2 _sft_epochs=2 _rl_steps=-1 ;;
    cxr-synthetic) _images=2 _sft_epochs=1 _rl_steps=-1 ;;  # the CPU demo's generated task
    *) echo "run/common.sh: unknown DATASET=$DATASET (mimic-cxr|rexgradient|iu-xray|padchest-gr|cxr-synthetic)" >&2
       exit 2 ;;
esac
export EDITGRPO_DATA_DIR="${EDITGRPO_DATA_DIR:-$REPO_ROOT/data}"
SWIFT_DATASET="${DATASET//-/_}_editgrpo"
TRAIN_DATASET="${TRAIN_DATASET:-$SWIFT_DATASET}"          # or a jsonl path
MAX_IMAGES="${MAX_IMAGES:-$_images}"                      # images per sample (the converter's cap): vLLM's per-prompt limit
SFT_EPOCHS="${SFT_EPOCHS:-$_sft_epochs}"
RL_MAX_STEPS="${RL_MAX_STEPS:-$_rl_steps}"

# ---- model family, template and images --------------------------------------------------------
# Scorer weights: the plugin reads EDITGRPO_MODELS_DIR itself (default ~/.cache/editgrpo/models,
# rewards/paths.py); the policy is looked up in the same folder unless BASE_MODEL says otherwise.
# MODEL_FAMILY (qwen2_5_vl | qwen3_vl | qwen3_5; default: the family of BASE_MODEL's config.json,
# else qwen2_5_vl, the paper's) selects swift's --model_type, the CXR template, the default
# BASE_MODEL (<models dir>/<the family's checkpoint>) and MAX_PIXELS/MIN_PIXELS: the paper's 512 /
# 334 visual tokens per image on the family's patch grid (templates/families.py, the one table).
# A family that does not match BASE_MODEL's config.json, an unsupported architecture, a TEMPLATE of
# another family and pixel bounds that hold no image stop here, before any model loads.
_family_settings="$("$PYTHON" "$REPO_ROOT/templates/families.py" shell --family "${MODEL_FAMILY:-}" \
    --base-model "${BASE_MODEL:-}" --template "${TEMPLATE:-}" --max-pixels "${MAX_PIXELS:-}" \
    --min-pixels "${MIN_PIXELS:-}" --models-dir "${EDITGRPO_MODELS_DIR:-$HOME/.cache/editgrpo/models}")" || exit 2
eval "$_family_settings"   # MODEL_FAMILY MODEL_TYPE TEMPLATE MAX_PIXELS MIN_PIXELS BASE_MODEL
export MODEL_FAMILY TEMPLATE MAX_PIXELS MIN_PIXELS   # run/infer.sh, started by run/paper.sh, infers with them
source "$REPO_ROOT/run/images.sh"   # keeps the MAX_PIXELS / MIN_PIXELS resolved above
TORCH_DTYPE="${TORCH_DTYPE:-bfloat16}"
FREEZE_VIT="${FREEZE_VIT:-true}"
OUTPUT_ROOT="${OUTPUT_ROOT:-$REPO_ROOT/output/$DATASET}"

# ---- launch: GPUs per node, nodes, DeepSpeed --------------------------------------------------
# swift starts torchrun itself when NPROC_PER_NODE or NNODES is set.
if [[ -z "${NPROC_PER_NODE:-}" && -z "${USE_CPU:-}" ]]; then   # the visible GPUs
    if [[ -n "${CUDA_VISIBLE_DEVICES:-}" ]]; then
        IFS=',' read -r -a _visible <<< "$CUDA_VISIBLE_DEVICES"
        NPROC_PER_NODE="${#_visible[@]}"
    elif command -v nvidia-smi >/dev/null 2>&1; then
        NPROC_PER_NODE="$(nvidia-smi -L 2>/dev/null | grep -c '^GPU' || true)"
    fi
    [[ "${NPROC_PER_NODE:-0}" -gt 0 ]] || unset NPROC_PER_NODE
fi
[[ -n "${NPROC_PER_NODE:-}" ]] && export NPROC_PER_NODE
for _var in NNODES NODE_RANK MASTER_ADDR MASTER_PORT CUDA_VISIBLE_DEVICES; do
    [[ -n "${!_var:-}" ]] && export "${_var?}"
done
WORLD_SIZE_TOTAL=$(( ${NPROC_PER_NODE:-1} * ${NNODES:-1} ))
DEEPSPEED="${DEEPSPEED:-zero2}"   # zero2 | zero3 | zero3_offload | none

# Checkpoints of an earlier run in the same OUTPUT_DIR would be mistaken for this run's
# (`latest_checkpoint`): stop unless told otherwise (ALLOW_EXISTING_OUTPUT=1, e.g. with
# --resume_from_checkpoint).
refuse_existing_output() {
    if [[ "${DRY_RUN:-0}" != 1 && "${ALLOW_EXISTING_OUTPUT:-0}" != 1 ]] && compgen -G "$1/checkpoint-*" >/dev/null; then
        echo "run/: $1 already holds checkpoints of an earlier run; set OUTPUT_DIR, remove them," \
             "or set ALLOW_EXISTING_OUTPUT=1" >&2
        exit 2
    fi
}

# The highest-numbered checkpoint-N under $1 (a placeholder path under DRY_RUN when none exists).
latest_checkpoint() {
    local found
    found="$(compgen -G "$1/checkpoint-*" | awk -F'checkpoint-' '{print $NF "\t" $0}' | sort -n | tail -n 1 | cut -f2- || true)"
    if [[ -n "$found" ]]; then echo "$found"; return 0; fi
    if [[ "${DRY_RUN:-0}" == 1 ]]; then echo "$1/checkpoint-LAST"; return 0; fi
    echo "run/: no checkpoint-* under $1 (run the previous stage first, or set the path explicitly)" >&2
    exit 2
}

# Arguments every training recipe shares (precision, vision tower, launch, logging).
train_common_args() {
    TRAIN_COMMON_ARGS=(
        --torch_dtype "$TORCH_DTYPE"
        --freeze_vit "$FREEZE_VIT"
        --gradient_checkpointing "${GRADIENT_CHECKPOINTING:-true}"
        --dataloader_num_workers "${DATALOADER_WORKERS:-4}"
        --dataset_num_proc "${DATASET_NUM_PROC:-4}"
        --logging_steps 1
        --report_to "${REPORT_TO:-tensorboard}"
        --check_model false
        --model_type "$MODEL_TYPE"   # swift maps Qwen3-VL's / Qwen3.5's architecture to several model types
    )
    if [[ "$DEEPSPEED" != none ]]; then TRAIN_COMMON_ARGS+=(--deepspeed "$DEEPSPEED"); fi
    if [[ -n "${USE_CPU:-}" ]]; then TRAIN_COMMON_ARGS+=(--use_cpu true); fi
}

# Gradient accumulation that gives `$1` samples per optimizer step at `$2` per device.
grad_accum_for() {
    local total=$1 per_device=$2 per_step=$(( $2 * WORLD_SIZE_TOTAL ))
    if (( total % per_step != 0 )); then
        echo "run/common.sh: $total samples/step is not divisible by $per_device per device x $WORLD_SIZE_TOTAL devices" >&2
        exit 2
    fi
    echo $(( total / per_step ))
}

# Print (DRY_RUN=1) or run `swift SUBCOMMAND ARGS...` with the exported settings. Runs swift with
# `exec`, so it must be the recipe's last command: the shell then never reads the script file
# again, and editing a recipe while a run is in progress cannot derail it.
run_swift() {
    if [[ "${DRY_RUN:-0}" == 1 ]]; then
        local env_line=() name
        for name in $(compgen -e | grep -E '^(EDITGRPO_|MAX_PIXELS$|MIN_PIXELS$|NPROC_PER_NODE$|NNODES$|NODE_RANK$|MASTER_ADDR$|MASTER_PORT$)' | sort); do
            env_line+=("$name=${!name}")
        done
        printf '%q ' "${env_line[@]}" swift "$@"
        printf '\n'
        return 0
    fi
    echo "+ swift $*" >&2
    exec "$SWIFT" "$@"
}
