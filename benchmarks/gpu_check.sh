#!/usr/bin/env bash
# Issue 13's GPU check, one device call of at most 9 minutes, both parts on one H200, one results file:
#  1. the clinical reward + edit analysis of one 32 x 5 step on full-size random scorer models in bf16,
#     beside the reference style (one pair per call, the packages' model code): benchmarks/rewards.py
#     --edits. Goal: <= 0.5 s for the step, >= 60x the reference style.
#  2. a real `swift rlhf --rlhf_type grpo` with the plugin on a full-size random Qwen2.5-VL-3B (bf16,
#     transformers generation, RaTE analyzer and real scorers on random weights), a few steps of
#     EditGRPO and of Dr.GRPO with identical settings: benchmarks/gpu_full_step.py. Goal: the edit
#     hook <= 3 % of the step.
#
#   bash benchmarks/gpu_check.sh --prepare      # here (PyPI reachable): .whl/ (git-ignored), its total printed
#   device run: command "bash benchmarks/gpu_check.sh", carry [".whl"], timeout_s 570 (it ends by 540 s)
#   bash benchmarks/gpu_check.sh --device cpu --size tiny   # the dry run (tests/test_gpu_check.py)
#
# The device image (Python 3.12, torch 2.11, transformers 5.17, accelerate, peft, ...) has neither
# ms-swift nor radgraph nor several of their needs: --prepare downloads cp312 wheels of exactly those
# (WHEELS below: the minimal set with which `swift rlhf --rlhf_type grpo` and the plugin import and
# run with transformers generation; vLLM, DeepSpeed, the web UI/server and ModelScope downloads are
# not needed) and builds radgraph's (sdist only on PyPI). The run installs them with --target into
# $GPU_CHECK_WORK/site, on PYTHONPATH ahead of python3's own packages; GPU_CHECK_WHEELS= (empty)
# uses python3's own packages instead (the project's .venv in the test). Data come from the
# repository (IU-XRay reports). Dry-run in a Python 3.12 venv holding only device-image packages.
#
# Time: part 1 may take PART1_S (default 170 s), everything BUDGET_S (default 510 s: the 9 minutes
# less the install and a margin); part 2 gets what is left, split between its two runs, and a run
# cut at its share still reports the steps it logged. Results: $OUT/gpu_check.txt (the whole output
# in $OUT/gpu_check.log, swift's per-step metrics in $OUT/part2_<run>_logging.jsonl); without $OUT,
# under $GPU_CHECK_WORK.
# Options: --device cuda|cpu, --size base|tiny (tiny: tiny scorers and policy, small steps: the dry
# run), --dtype (scorers'; default bfloat16 on cuda, float32 on cpu); extra arguments after `--` go
# to benchmarks/gpu_full_step.py (e.g. -- --steps 4 --prompts 8).
set -euo pipefail
cd "$(dirname "$0")/.."

# cp312 wheels the device image lacks (KINDS.md's package list), pinned to what pyproject.toml's
# ms-swift 4.6 resolves to in the project's .venv; radgraph 0.1.18 is built from its sdist. Left out,
# as the dry run imports none of them: ms-swift's addict, attrdict, binpacking (packing), cpm-kernels,
# rouge, zstandard (urllib3 tries it), importlib-metadata, fastapi/uvicorn/openai (server, client),
# oss2, transformers-stream-generator (sdist only); cffi's pycparser; qwen-vl-utils' av (video).
# fsspec and typing-extensions are carried for the versions datasets and pydantic ask for.
WHEELS=(
    ms-swift==4.6.0 trl==0.29.1 datasets==4.8.4 dill==0.4.1 multiprocess==0.70.19 fsspec==2026.2.0
    modelscope==1.40.2 modelscope-hub==0.5.1 cryptography==50.0.2 cffi==2.1.1
    pydantic==2.14.4 pydantic-core==2.50.5 annotated-types==0.8.0 typing-inspection==0.4.5 typing-extensions==4.16.0
    dacite==1.9.2 json-repair==0.64.6 qwen-vl-utils==0.0.14 msgspec==0.23.0 jsonlines==4.0.0
    appdirs==1.4.4 dotmap==1.3.30 jsonpickle==4.1.4 nltk==3.10.4 defusedxml==0.7.1
)
RADGRAPH=radgraph==0.1.18
WHEEL_DIR=.whl
LIMIT_MIB=64   # what travels: the working tree plus carried paths

if [[ "${1:-}" == "--prepare" ]]; then
    grep -qxF "/$WHEEL_DIR/" .git/info/exclude 2>/dev/null || echo "/$WHEEL_DIR/" >> .git/info/exclude
    rm -rf "$WHEEL_DIR" && mkdir -p "$WHEEL_DIR"
    platforms=()
    for tag in manylinux_2_28 manylinux_2_27 manylinux_2_24 manylinux_2_17 manylinux2014 manylinux1; do
        platforms+=(--platform "${tag}_x86_64")
    done
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --abi cp312 --abi abi3 --abi none "${platforms[@]}" -d "$WHEEL_DIR" "${WHEELS[@]}"
    python3 -m pip wheel -q --no-deps -w "$WHEEL_DIR" "$RADGRAPH"
    ls -l "$WHEEL_DIR" | awk 'NR > 1 {printf "%10d  %s\n", $5, $9}'
    wheels_kib=$(du -sk "$WHEEL_DIR" | cut -f1)
    tree_kib=$(git ls-files -z -c -o --exclude-standard | du -ck --files0-from=- 2>/dev/null | tail -1 | cut -f1)
    echo "$(ls "$WHEEL_DIR" | wc -l) wheels, $((wheels_kib / 1024)) MiB; with the working tree ($((tree_kib / 1024)) MiB)" \
         "$(((wheels_kib + tree_kib) / 1024)) MiB of the ${LIMIT_MIB} MiB that travel"
    if (( wheels_kib + tree_kib > LIMIT_MIB * 1024 )); then echo "over ${LIMIT_MIB} MiB" >&2; exit 1; fi
    exit 0
fi

DEVICE=cuda SIZE=base DTYPE=
while [[ $# -gt 0 ]]; do
    case "$1" in
        --device) DEVICE=$2; shift 2 ;;
        --size) SIZE=$2; shift 2 ;;
        --dtype) DTYPE=$2; shift 2 ;;
        --) shift; break ;;
        *) echo "gpu_check.sh: unknown argument $1 (see the header)" >&2; exit 2 ;;
    esac
done
[[ -n "$DTYPE" ]] || if [[ "$DEVICE" == cpu ]]; then DTYPE=float32; else DTYPE=bfloat16; fi
START=$SECONDS
BUDGET_S=${BUDGET_S:-510} PART1_S=${PART1_S:-170}
WORK=${GPU_CHECK_WORK:-/tmp/gpu-check}
WHEELS_FROM=${GPU_CHECK_WHEELS-$WHEEL_DIR}
RESULTS_DIR=${OUT:-$WORK}
mkdir -p "$WORK" "$RESULTS_DIR"
RESULTS=$RESULTS_DIR/gpu_check.txt LOG=$RESULTS_DIR/gpu_check.log
: > "$RESULTS"
: > "$LOG"

site=
if [[ -n "$WHEELS_FROM" ]]; then
    compgen -G "$WHEELS_FROM/*.whl" >/dev/null || { echo "no wheels in $WHEELS_FROM: run bash benchmarks/gpu_check.sh --prepare first (or set GPU_CHECK_WHEELS=)" >&2; exit 2; }
    rm -rf "$WORK/site"
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$WORK/site" "$WHEELS_FROM"/*.whl
    site=":$WORK/site"
fi
export PYTHONPATH="$PWD$site${PYTHONPATH:+:$PYTHONPATH}"   # the repository first (radgraph's wheel brings a top-level tests/)
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false

say() { echo "$@" | tee -a "$RESULTS" "$LOG"; }
quiet() { grep -v -i -E "warn|Loading weights|Writing model shards|^\s*$" || true; }

say "# GPU check ($(date -u +%FT%TZ), --device $DEVICE --size $SIZE --dtype $DTYPE)"
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || echo "no nvidia-smi"; } | while read -r line; do say "$line"; done
say "$(python3 - <<'EOF'
import importlib.metadata as m, sys
names = ("torch", "transformers", "accelerate", "peft", "tokenizers", "ms-swift", "trl", "datasets", "radgraph")
def version(name):
    try:
        return m.version(name)
    except m.PackageNotFoundError:
        return "-"
print(f"python {sys.version.split()[0]}; " + ", ".join(f"{name} {version(name)}" for name in names))
EOF
)"

if [[ "$SIZE" == tiny ]]; then
    part1=(--size tiny --prompts 4 --ref-pairs 5)
    part2=(--size tiny --prompts 2 --generations 5 --max-new 16 --steps 2 --image-size 56)
else
    part1=(--size base)
    part2=(--size full --prompts 8 --generations 5 --max-new 128 --steps 3 --micro-batch 10 --image-size 512)
fi
MODELS=$WORK/models-$SIZE

say ""
say "## 1. reward + edit analysis of one step (benchmarks/rewards.py --edits), limit ${PART1_S} s"
set +e
timeout -k 10 "$PART1_S" python3 benchmarks/rewards.py --device "$DEVICE" --dtype "$DTYPE" --edits \
    --models-dir "$MODELS" "${part1[@]}" > "$WORK/part1.out" 2>&1
status=$?
set -e
cat "$WORK/part1.out" >> "$LOG"
quiet < "$WORK/part1.out" >> "$RESULTS"
if [[ $status != 0 ]]; then tail -n 12 "$WORK/part1.out" >> "$RESULTS"; fi
say "(part 1: exit $status$([[ $status == 124 || $status == 137 ]] && echo ", cut at ${PART1_S} s"), $((SECONDS - START)) s since start)"

left=$((BUDGET_S - (SECONDS - START)))
say ""
say "## 2. swift rlhf steps, EditGRPO vs Dr.GRPO (benchmarks/gpu_full_step.py), ${left} s left"
set +e
timeout -k 10 $((left + 20)) python3 benchmarks/gpu_full_step.py --device "$DEVICE" --dtype "$DTYPE" \
    --models-dir "$MODELS" --work "$WORK/part2" --budget "$left" --out "$WORK/part2.md" "${part2[@]}" "$@" \
    > "$WORK/part2.out" 2>&1
status=$?
set -e
cat "$WORK/part2.out" >> "$LOG"
if [[ -s "$WORK/part2.md" ]]; then cat "$WORK/part2.md" >> "$RESULTS"; else tail -n 20 "$WORK/part2.out" | quiet >> "$RESULTS"; fi
for run in "$WORK"/part2/*/; do   # swift's per-step metrics of each run, as logged
    found=$(ls -t "$run"v*-*/logging.jsonl 2>/dev/null | head -n 1 || true)
    if [[ -n "$found" ]]; then cp "$found" "$RESULTS_DIR/part2_$(basename "$run")_logging.jsonl"; fi
done
say "(part 2: exit $status, $((SECONDS - START)) s since start)"
echo "results: $RESULTS"
