#!/usr/bin/env bash
# The paper's evaluation (docs/algorithm.md §7) of one or more `run/infer.sh` results, side by side.
#
#   run/evaluate.sh --out DIR RESULT.jsonl [RESULT2.jsonl ...] [--names sft,editgrpo] [any `editgrpo eval` flag]
#
# Defaults: the reference evaluation's text cleaning (--clean reference), all metrics, the real
# scorers (weights under $EDITGRPO_MODELS_DIR; `editgrpo check-weights` lists what is missing).
# GREEN runs when a judge is configured ($EDITGRPO_GREEN_DIR / --green-model, or
# --green-endpoint URL --green-endpoint-model NAME for `swift deploy`/vLLM), else it is skipped
# with a note. Offline proxies: BACKEND=rules. Later flags override these defaults.
# Writes DIR/metrics.{json,csv,md,png} and DIR/per_sample.jsonl; prints the table.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
EDITGRPO="${EDITGRPO:-$([[ -x "$ROOT/.venv/bin/editgrpo" ]] && echo "$ROOT/.venv/bin/editgrpo" || echo editgrpo)}"
[[ $# -gt 0 ]] || { sed -n '2,12p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2; }
exec "$EDITGRPO" eval --clean reference --backend "${BACKEND:-real}" "$@"
