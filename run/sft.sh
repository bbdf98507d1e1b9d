#!/usr/bin/env bash
# Stage 1: supervised fine-tuning of Qwen2.5-VL-3B-Instruct on the gold FINDINGS (full parameters,
# vision tower frozen, bf16). Epochs follow the paper per data set (MIMIC-CXR/PadChest-GR 2,
# RexGradient/IU-XRay 1); learning rate and batch are our defaults (the paper does not give them).
#
#   DATASET=mimic-cxr bash run/sft.sh                  # 1 node, all visible GPUs
#   DATASET=iu-xray NPROC_PER_NODE=4 bash run/sft.sh
#   NNODES=2 NODE_RANK=0 MASTER_ADDR=10.0.0.1 MASTER_PORT=29500 NPROC_PER_NODE=8 bash run/sft.sh
#
# Output: $OUTPUT_DIR (default output/<dataset>/sft)/checkpoint-N; the RL recipes start from the
# latest one unless SFT_CHECKPOINT is set.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

SFT_LR="${SFT_LR:-1e-5}"
SFT_GLOBAL_BATCH="${SFT_GLOBAL_BATCH:-32}"
# Default: 4 per device, fewer when the world is so large that 4 would exceed the global batch.
if [[ -z "${SFT_PER_DEVICE_BATCH:-}" ]]; then
    SFT_PER_DEVICE_BATCH=$(( SFT_GLOBAL_BATCH / WORLD_SIZE_TOTAL ))
    if (( SFT_PER_DEVICE_BATCH > 4 )); then SFT_PER_DEVICE_BATCH=4; fi
    if (( SFT_PER_DEVICE_BATCH < 1 )); then SFT_PER_DEVICE_BATCH=1; fi
fi
OUTPUT_DIR="${OUTPUT_DIR:-$OUTPUT_ROOT/sft}"
GRAD_ACCUM="$(grad_accum_for "$SFT_GLOBAL_BATCH" "$SFT_PER_DEVICE_BATCH")"
refuse_existing_output "$OUTPUT_DIR"
train_common_args

run_swift sft \
    --model "$BASE_MODEL" \
    --template "$TEMPLATE" \
    --external_plugins "$EDITGRPO_PLUGIN" \
    --dataset "$TRAIN_DATASET" \
    --tuner_type full \
    --num_train_epochs "$SFT_EPOCHS" \
    --learning_rate "$SFT_LR" \
    --lr_scheduler_type cosine \
    --warmup_ratio 0.03 \
    --weight_decay 0.01 \
    --per_device_train_batch_size "$SFT_PER_DEVICE_BATCH" \
    --gradient_accumulation_steps "$GRAD_ACCUM" \
    --max_length "${MAX_LENGTH:-4096}" \
    --save_strategy epoch \
    --save_only_model true \
    --output_dir "$OUTPUT_DIR" \
    --add_version false \
    "${TRAIN_COMMON_ARGS[@]}" \
    "$@"
