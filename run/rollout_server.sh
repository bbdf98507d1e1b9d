#!/usr/bin/env bash
# vLLM *server* mode for the RL stage: a `swift rollout` server generates the rollouts on its own
# GPUs while the trainer (run/editgrpo.sh / run/grpo_baseline.sh) trains on the others. The server
# loads the plugin too (template, data sets) and starts from the same SFT checkpoint; the trainer
# pushes its weights to it after every step.
#
#   # node with 8 GPUs: GPUs 4-7 serve rollouts (data parallel), GPUs 0-3 train
#   # (the trainer's GPU count must divide 32 prompts x 5 rollouts per step: 1, 2, 4, 8, ...)
#   CUDA_VISIBLE_DEVICES=4,5,6,7 bash run/rollout_server.sh &
#   CUDA_VISIBLE_DEVICES=0,1,2,3 NPROC_PER_NODE=4 VLLM_MODE=server bash run/paper.sh
#   # or one RL run:  ... bash run/editgrpo.sh $(bash run/rollout_server.sh --trainer-flags)
#
# Environment: SFT_CHECKPOINT [latest checkpoint-* of $OUTPUT_ROOT/sft], ROLLOUT_HOST [0.0.0.0],
# ROLLOUT_PORT [8000], ROLLOUT_DP [number of visible GPUs], ROLLOUT_TP [1],
# VLLM_GPU_MEMORY_UTILIZATION [0.9], MAX_COMPLETION_LENGTH [512].
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

ROLLOUT_HOST="${ROLLOUT_HOST:-0.0.0.0}"
ROLLOUT_PORT="${ROLLOUT_PORT:-8000}"
if [[ "${1:-}" == --trainer-flags ]]; then  # what the trainer needs to reach this server
    host="$ROLLOUT_HOST"; [[ "$host" == 0.0.0.0 ]] && host=127.0.0.1
    echo "--vllm_mode server --vllm_server_host $host --vllm_server_port $ROLLOUT_PORT"
    exit 0
fi
if [[ -z "${ROLLOUT_DP:-}" ]]; then
    if [[ -n "${CUDA_VISIBLE_DEVICES:-}" ]]; then
        IFS=, read -r -a _gpus <<< "$CUDA_VISIBLE_DEVICES"; ROLLOUT_DP="${#_gpus[@]}"
    else
        ROLLOUT_DP="${NPROC_PER_NODE:-1}"
    fi
fi
unset NPROC_PER_NODE NNODES  # the server is one process per node; vLLM spreads over its GPUs
SFT_CHECKPOINT="${SFT_CHECKPOINT:-$(latest_checkpoint "$OUTPUT_ROOT/sft")}"

run_swift rollout \
    --model "$SFT_CHECKPOINT" \
    --template "$TEMPLATE" \
    --external_plugins "$EDITGRPO_PLUGIN" \
    --torch_dtype "$TORCH_DTYPE" \
    --vllm_data_parallel_size "$ROLLOUT_DP" \
    --vllm_tensor_parallel_size "${ROLLOUT_TP:-1}" \
    --vllm_gpu_memory_utilization "${VLLM_GPU_MEMORY_UTILIZATION:-0.9}" \
    --vllm_limit_mm_per_prompt "{\"image\": $MAX_IMAGES}" \
    --vllm_max_model_len "${MAX_LENGTH:-8192}" \
    --host "$ROLLOUT_HOST" \
    --port "$ROLLOUT_PORT" \
    "$@"
