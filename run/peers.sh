#!/usr/bin/env bash
# Stage 2, a gold-guided peer of EditGRPO shipped by ms-swift 4.6 (README "Gold-guided peers"), from
# the SFT checkpoint with the paper's shared settings (run/rl_common.sh lists them and every variable).
# METHOD is '+'-joined: `editgrpo` (edits on; without it the base is Dr.GRPO) and peers:
#   rlsd   RLSD, --advantage_reweight rlsd: the teacher gap reweights the advantage per token
#   sdar   SDAR, --sdar_loss_coef: a confidence-gated distillation loss
#   opd    OPD-RL, --teacher_kl_coef: the teacher gap added to the advantage
#   chord  CHORD, --chord_sft_dataset (the training data) + --chord_mu_*: (1 - mu) GRPO + mu SFT
# The first three score each rollout with the current policy shown the row's `teacher_prompt`.
#
#   METHOD=rlsd DATASET=mimic-cxr bash run/peers.sh
#   METHOD=editgrpo+chord bash run/peers.sh --chord_mu_decay_steps 500
#
# Output in $OUTPUT_ROOT/<METHOD with + as _> unless OUTPUT_DIR is set; extra swift flags go last.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/rl_common.sh"
if [[ -z "${METHOD:-}" ]]; then
    echo "run/peers.sh: set METHOD to rlsd, sdar, opd, chord, editgrpo+rlsd or editgrpo+chord (see its header)" >&2
    exit 2
fi
run_peer "$METHOD" "$@"
