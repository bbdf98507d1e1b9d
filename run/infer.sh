#!/usr/bin/env bash
# Generate FINDINGS for a test set with `swift infer` and record how they were decoded.
#
#   run/infer.sh --model MODEL_OR_CKPT [--adapters LORA_CKPT] --data TEST.jsonl --out RESULT.jsonl [-- extra swift infer flags]
#
# Decoding is deterministic by default (greedy: temperature 0) with at most 300 new tokens, the
# length of a long FINDINGS section. Override through the environment:
#   TEMPERATURE=0  MAX_NEW_TOKENS=300  MAX_BATCH_SIZE=8  INFER_BACKEND=transformers|vllm  MAX_IMAGES=6 (vllm)
#   MODEL_FAMILY / TEMPLATE (default: the checkpoint's family and its CXR template, registered by the
#   plugin)  SWIFT=.venv/bin/swift  OVERWRITE=0|1
# Writes RESULT.jsonl: swift's rows (response, labels, messages, images, ...); swift drops the data
# set's other columns, so study_id/subject_id/split/solution are put back by row position after
# checking each row's gold answer. RESULT.settings.json (model, data, decoding, versions) is
# written last; `editgrpo eval` records it with the metrics.
# swift appends to an existing result file, so an existing RESULT.jsonl is an error unless OVERWRITE=1.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

usage() { sed -n '2,15p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2; }

MODEL="" ADAPTERS="" DATA="" OUT=""
EXTRA=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --model) MODEL="$2"; shift 2 ;;
    --adapters) ADAPTERS="$2"; shift 2 ;;
    --data) DATA="$2"; shift 2 ;;
    --out) OUT="$2"; shift 2 ;;
    --) shift; EXTRA=("$@"); break ;;
    -h|--help) usage ;;
    *) echo "infer.sh: unknown argument $1 (swift flags go after --)" >&2; usage ;;
  esac
done
[[ -n "$MODEL" && -n "$DATA" && -n "$OUT" ]] || { echo "infer.sh: --model, --data and --out are required" >&2; usage; }
[[ -f "$DATA" ]] || { echo "infer.sh: data set $DATA not found" >&2; exit 2; }
[[ "$OUT" == *.jsonl ]] || { echo "infer.sh: --out must end in .jsonl" >&2; exit 2; }

TEMPERATURE="${TEMPERATURE:-0}"
MAX_NEW_TOKENS="${MAX_NEW_TOKENS:-300}"
MAX_BATCH_SIZE="${MAX_BATCH_SIZE:-8}"
INFER_BACKEND="${INFER_BACKEND:-transformers}"
VENV_BIN="$ROOT/.venv/bin"
SWIFT="${SWIFT:-$([[ -x "$VENV_BIN/swift" ]] && echo "$VENV_BIN/swift" || echo swift)}"
PYTHON="${PYTHON:-$([[ -x "$VENV_BIN/python" ]] && echo "$VENV_BIN/python" || echo python3)}"
# The model family (MODEL_FAMILY, else the checkpoint's config.json) gives swift's --model_type, the CXR
# template and the training resolution (templates/families.py); a mismatch stops here, before swift starts.
_family_settings="$("$PYTHON" "$ROOT/templates/families.py" shell --family "${MODEL_FAMILY:-}" --base-model "$MODEL" \
    --template "${TEMPLATE:-}" --max-pixels "${MAX_PIXELS:-}" --min-pixels "${MIN_PIXELS:-}")" || exit 2
eval "$_family_settings"   # MODEL_FAMILY MODEL_TYPE TEMPLATE MAX_PIXELS MIN_PIXELS BASE_MODEL
source "$ROOT/run/images.sh"   # exports the MAX_PIXELS / MIN_PIXELS resolved above
SETTINGS="${OUT%.jsonl}.settings.json"

if [[ -e "$OUT" ]]; then
  if [[ "${OVERWRITE:-0}" == "1" ]]; then
    rm -f "$OUT" "$SETTINGS"
  else
    echo "infer.sh: $OUT exists and swift would append to it; remove it or set OVERWRITE=1" >&2
    exit 2
  fi
fi
rm -f "$SETTINGS"  # written last by record-infer: a stale one must never sit beside a new, partial result
mkdir -p "$(dirname "$OUT")"

ARGS=(
  infer
  --model "$MODEL"
  --model_type "$MODEL_TYPE"
  --external_plugins "$ROOT/swift_plugins/editgrpo/plugin.py"
  --template "$TEMPLATE"
  --val_dataset "$DATA"
  --result_path "$OUT"
  --infer_backend "$INFER_BACKEND"
  --temperature "$TEMPERATURE"
  --max_new_tokens "$MAX_NEW_TOKENS"
  --write_batch_size 1000
)
[[ -n "$ADAPTERS" ]] && ARGS+=(--adapters "$ADAPTERS")
[[ "$INFER_BACKEND" == "transformers" ]] && ARGS+=(--max_batch_size "$MAX_BATCH_SIZE")
[[ "$INFER_BACKEND" == "vllm" ]] && ARGS+=(--vllm_limit_mm_per_prompt "{\"image\": ${MAX_IMAGES:-6}}")  # the converters' largest cap
ARGS+=("${EXTRA[@]}")

echo "infer.sh: $SWIFT ${ARGS[*]}" >&2
start=$(date +%s)
"$SWIFT" "${ARGS[@]}"
[[ -s "$OUT" ]] || { echo "infer.sh: swift infer wrote no results to $OUT" >&2; exit 1; }

# The settings file is written last (editgrpo record-infer), so its presence means the result file is complete.
PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" "$PYTHON" -m swift_plugins.editgrpo.cli record-infer \
  --result "$OUT" --data "$DATA" --model "$MODEL" --adapters "$ADAPTERS" --template "$TEMPLATE" \
  --infer-backend "$INFER_BACKEND" --temperature "$TEMPERATURE" --max-new-tokens "$MAX_NEW_TOKENS" \
  --max-batch-size "$MAX_BATCH_SIZE" --max-pixels "${MAX_PIXELS:-}" --min-pixels "${MIN_PIXELS:-}" \
  --wall-seconds $(( $(date +%s) - start )) -- "${EXTRA[@]}"
