# Stage 2, shared by run/editgrpo.sh, run/grpo_baseline.sh and run/peers.sh (sourced, never
# executed): `swift rlhf --rlhf_type grpo` through the EditGRPO plugin with the paper's
# hyper-parameters (docs/algorithm.md §6). The recipes differ only in EDITGRPO_EDITS and, for the
# gold-guided peers, the peer's own flags (run_peer), so a comparison changes nothing else.
#
#   paper: 32 prompts/step, G = 5, temperature 1.0, lr 1e-6 constant, weight decay 0.01, KL beta
#   0.01 (k3, in the loss), clip eps 0.2, one optimizer step per rollout batch, Dr.GRPO advantage
#   and loss (--advantage_estimator grpo --scale_rewards none --loss_type dr_grpo), reward
#   editgrpo_clinical (RadGraph-F1 + CheXbert micro-F1-14 + RaTEScore), max pixels 401,408 /
#   min 262,144, frozen vision tower, bf16, vLLM colocated with the trainer. No teacher term
#   (--teacher_kl_coef 0): the converted rows carry a `teacher_prompt` column, which alone would
#   make ms-swift add OPD-RL's teacher signal (coefficient 1.0 by default) to every run.
#
# Environment (defaults in brackets): SFT_CHECKPOINT [latest checkpoint-* of $OUTPUT_ROOT/sft],
# OUTPUT_DIR [$OUTPUT_ROOT/<recipe>], TRAIN_DATASET, NUM_GENERATIONS [5], PROMPTS_PER_STEP [32],
# PER_DEVICE_BATCH [rollouts per device per micro-batch, <= 10], RL_LR [1e-6], RL_MAX_STEPS
# [per data set; -1 = one epoch], BETA [0.01], TEMPERATURE [1.0], MAX_COMPLETION_LENGTH [512],
# REWARD_FUNCS [editgrpo_clinical], USE_VLLM [true], VLLM_GPU_MEMORY_UTILIZATION [0.5],
# SAVE_STEPS [200]; EDITGRPO_* (edit fraction, analyzer, reward backend, models dir, seed, ...)
# pass through to the plugin. Extra swift flags go after the recipe's name on the command line.
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

# run_rl NAME: NAME names the default output directory; EDITGRPO_EDITS must be exported by the caller.
run_rl() {
    local name=$1
    shift
    local generations="${NUM_GENERATIONS:-5}" prompts="${PROMPTS_PER_STEP:-32}"
    local rollouts=$(( prompts * generations ))
    local per_device="${PER_DEVICE_BATCH:-}"
    if [[ -z "$per_device" ]]; then
        per_device=$(( rollouts / WORLD_SIZE_TOTAL ))
        while (( per_device > 10 )) && (( per_device % 2 == 0 )); do per_device=$(( per_device / 2 )); done
        if (( per_device < 1 )); then per_device=1; fi
    fi
    local grad_accum
    grad_accum="$(grad_accum_for "$rollouts" "$per_device")"
    local sft_checkpoint="${SFT_CHECKPOINT:-$(latest_checkpoint "$OUTPUT_ROOT/sft")}"
    local output_dir="${OUTPUT_DIR:-$OUTPUT_ROOT/$name}"
    refuse_existing_output "$output_dir"
    train_common_args

    local max_steps=(--max_steps "$RL_MAX_STEPS")
    if [[ "$RL_MAX_STEPS" == -1 ]]; then max_steps=(--num_train_epochs 1); fi
    local rollout_args=(--use_vllm false)
    if [[ "${USE_VLLM:-true}" == true ]]; then
        rollout_args=(--use_vllm true --vllm_mode colocate
                      --vllm_gpu_memory_utilization "${VLLM_GPU_MEMORY_UTILIZATION:-0.5}"
                      --vllm_limit_mm_per_prompt "{\"image\": $MAX_IMAGES}" --sleep_level 1)
    fi

    run_swift rlhf \
        --rlhf_type grpo \
        --model "$sft_checkpoint" \
        --template "$TEMPLATE" \
        --external_plugins "$EDITGRPO_PLUGIN" \
        --dataset "$TRAIN_DATASET" \
        --tuner_type full \
        --reward_funcs ${REWARD_FUNCS:-editgrpo_clinical} \
        --num_generations "$generations" \
        --per_device_train_batch_size "$per_device" \
        --gradient_accumulation_steps "$grad_accum" \
        --num_iterations 1 \
        --temperature "${TEMPERATURE:-1.0}" \
        --max_completion_length "${MAX_COMPLETION_LENGTH:-512}" \
        --learning_rate "${RL_LR:-1e-6}" \
        --lr_scheduler_type constant \
        --warmup_ratio 0 \
        --weight_decay 0.01 \
        --advantage_estimator grpo \
        --scale_rewards none \
        --loss_type dr_grpo \
        --beta "${BETA:-0.01}" \
        --epsilon 0.2 \
        --teacher_kl_coef 0 \
        "${max_steps[@]}" \
        "${rollout_args[@]}" \
        --log_completions true \
        --save_strategy steps \
        --save_steps "${SAVE_STEPS:-200}" \
        --save_only_model true \
        --output_dir "$output_dir" \
        --add_version false \
        "${TRAIN_COMMON_ARGS[@]}" \
        "$@"
}

# run_peer METHOD [FLAGS...]: a gold-guided peer (README "Gold-guided peers"): the paper's settings
# above, the edits switch and the peer's own flags from swift_plugins/editgrpo/peers.py (one place,
# also read by the arena), then FLAGS. Refused before any model loads: an unknown METHOD, a
# combination ms-swift rejects or would half-ignore, and training rows without `teacher_prompt`
# for a peer that reads it (the data check is skipped under DRY_RUN).
run_peer() {
    local method=$1
    shift
    local settings
    local check=()
    if [[ "${DRY_RUN:-0}" == 1 ]]; then check=(--no-data-check); fi
    settings="$(cd "$REPO_ROOT" && "$PYTHON" -m swift_plugins.editgrpo.peers "$method" --dataset "$TRAIN_DATASET" "${check[@]}")" \
        || exit 2
    local lines
    mapfile -t lines <<< "$settings"
    export EDITGRPO_EDITS="${lines[0]}"
    run_rl "${method//+/_}" "${lines[@]:1}" "$@"
}
