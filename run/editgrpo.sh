#!/usr/bin/env bash
# Stage 2: EditGRPO (post-rollout edits + Dr.GRPO) from the SFT checkpoint, paper settings
# (run/rl_common.sh lists them and every variable).
#
#   DATASET=mimic-cxr bash run/editgrpo.sh
#   DATASET=iu-xray NPROC_PER_NODE=4 EDITGRPO_EDIT_FRACTION=0.4 bash run/editgrpo.sh --save_steps 50
#
# Edit options come from EDITGRPO_* (fraction, placement, ops, tau, match, analyzer, seed,
# advantage); the run records them in $OUTPUT_DIR/editgrpo_config.json.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/rl_common.sh"
export EDITGRPO_EDITS=on
run_rl editgrpo "$@"
