#!/usr/bin/env bash
# One data set end to end with the paper's settings: SFT -> EditGRPO and Dr.GRPO (both from the
# same SFT checkpoint, same flags, only EDITGRPO_EDITS differs) -> swift infer on the test split
# -> the metric table (real scorers; `editgrpo check-weights` first).
#
#   DATASET=mimic-cxr bash run/paper.sh                          # 1 node, all GPUs, vLLM colocate, ZeRO-2
#   DATASET=iu-xray NPROC_PER_NODE=4 DEEPSPEED=zero3 bash run/paper.sh
#   DATASET=rexgradient VLLM_MODE=server bash run/paper.sh     # with run/rollout_server.sh running
#   NNODES=2 NODE_RANK=$RANK MASTER_ADDR=10.0.0.1 MASTER_PORT=29500 NPROC_PER_NODE=8 bash run/paper.sh
#
# VLLM_MODE: colocate (default) | server (ROLLOUT_HOST/ROLLOUT_PORT of run/rollout_server.sh) |
# none (HF generate). Every variable of run/common.sh, run/sft.sh and run/rl_common.sh applies.
# A finished stage leaves $OUTPUT_ROOT/.done/<stage>; re-running skips it (delete the file to redo).
# Multi-node: run the same command on every node (NODE_RANK differs); inference and evaluation
# run on node 0 only.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

VLLM_MODE="${VLLM_MODE:-colocate}"
RL_FLAGS=()
case "$VLLM_MODE" in
    colocate) export USE_VLLM=true ;;
    server)   export USE_VLLM=true
              read -r -a RL_FLAGS <<< "$(bash "$RUN_DIR/rollout_server.sh" --trainer-flags)" ;;
    none)     export USE_VLLM=false ;;
    *) echo "run/paper.sh: VLLM_MODE=$VLLM_MODE (colocate|server|none)" >&2; exit 2 ;;
esac
TEST_FILE="${TEST_FILE:-$EDITGRPO_DATA_DIR/${DATASET//-/_}/test.jsonl}"
DONE_DIR="$OUTPUT_ROOT/.done"
EVAL_DIR="${EVAL_DIR:-$OUTPUT_ROOT/eval}"

# stage NAME COMMAND...: run COMMAND unless NAME finished before. DRY_RUN: the training recipes
# print their swift command themselves; other commands are printed as they would run.
stage() {
    local name=$1 arg
    shift
    if [[ "${DRY_RUN:-0}" == 1 ]]; then
        for arg in "$@"; do
            case "$arg" in */sft.sh|*/editgrpo.sh|*/grpo_baseline.sh) "$@"; return 0 ;; esac
        done
        printf '%q ' "$@"
        printf '\n'
        return 0
    fi
    if [[ -e "$DONE_DIR/$name" ]]; then echo "run/paper.sh: $name done earlier ($DONE_DIR/$name)" >&2; return 0; fi
    echo "run/paper.sh: == $name" >&2
    "$@"
    mkdir -p "$DONE_DIR" && date -u +%FT%TZ > "$DONE_DIR/$name"
}

stage sft bash "$RUN_DIR/sft.sh"
stage editgrpo env OUTPUT_DIR="$OUTPUT_ROOT/editgrpo" bash "$RUN_DIR/editgrpo.sh" "${RL_FLAGS[@]}"
stage drgrpo env OUTPUT_DIR="$OUTPUT_ROOT/drgrpo" bash "$RUN_DIR/grpo_baseline.sh" "${RL_FLAGS[@]}"
[[ "${NODE_RANK:-0}" == 0 ]] || exit 0

results=()
for method in sft editgrpo drgrpo; do
    result="$OUTPUT_ROOT/infer/$method.jsonl"
    results+=("$result")
    stage "infer_$method" env OVERWRITE=1 bash "$RUN_DIR/infer.sh" \
        --model "$(latest_checkpoint "$OUTPUT_ROOT/$method")" --data "$TEST_FILE" --out "$result"
done
stage evaluate bash "$RUN_DIR/evaluate.sh" --out "$EVAL_DIR" "${results[@]}" --names sft,editgrpo,drgrpo
