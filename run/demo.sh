#!/usr/bin/env bash
# The embedded CPU demo (= `make demo` = `editgrpo demo`): synthetic two-view chest X-rays, a tiny
# Qwen2.5-VL, SFT -> EditGRPO and Dr.GRPO (same SFT checkpoint, same step budget) -> swift infer
# on held-out studies -> the metric table with the offline rules backend. No GPU, weights or data.
#
#   bash run/demo.sh                       # -> demo_out/summary.json, eval/metrics.{md,png}, edit_telemetry.json
#   bash run/demo.sh --profile quick       # a few steps of every stage (what the tests run)
#   bash run/demo.sh --restart             # discard earlier stages and start over
#
# Creates the virtual environment first when it is missing (`make setup`). Re-running resumes
# at the first unfinished stage; a different configuration restarts the output directory.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
if [[ ! -f .venv/.installed ]]; then
    echo "demo: no virtual environment yet; running 'make setup' first" >&2
    make setup
fi
exec .venv/bin/python -m swift_plugins.editgrpo.cli demo "$@"
