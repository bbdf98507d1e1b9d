#!/usr/bin/env bash
# Stage 2 baseline: Dr.GRPO = exactly run/editgrpo.sh's flags with the edits off (same trainer,
# reward, advantage and loss), so a comparison isolates the edits.
#
#   DATASET=mimic-cxr bash run/grpo_baseline.sh
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/rl_common.sh"
export EDITGRPO_EDITS=off
run_rl grpo_baseline "$@"
