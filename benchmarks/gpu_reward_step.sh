#!/usr/bin/env bash
# GPU timing in one device call: the wall time of one training step's clinical reward (32 prompts x
# G = 5 = 160 pairs) and of a cold EditGRPO step (edit analysis, edits, reward of the edited batch),
# on full-size random models in bf16, with benchmarks/rewards.py. Goal: <= 0.5 s on one H200.
#
#   bash benchmarks/gpu_reward_step.sh --prepare     # here (PyPI reachable): .whl/ and .bench-data/, both git-ignored
#   device run: command "bash benchmarks/gpu_reward_step.sh", carry [".whl", ".bench-data"], timeout_s 540
#   bash benchmarks/gpu_reward_step.sh --device cpu --size tiny   # extra arguments go to rewards.py (a dry run)
#
# The device image has torch, transformers, tokenizers, sentencepiece and h5py but not radgraph
# (sdist only on PyPI: built into a wheel here) nor its pure-Python needs; those travel as wheels.
# Results land in $OUT/gpu_reward_step.txt.
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ "${1:-}" == "--prepare" ]]; then
    for dir in .whl .bench-data; do
        grep -qxF "/$dir/" .git/info/exclude 2>/dev/null || echo "/$dir/" >> .git/info/exclude
    done
    rm -rf .whl && mkdir -p .whl .bench-data
    python3 -m pip wheel -q --no-deps -w .whl radgraph==0.1.18
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux2014_x86_64 -d .whl appdirs==1.4.4 dotmap==1.3.30 jsonpickle==4.1.4 nltk==3.10.4 defusedxml==0.7.1
    install -m 0644 datasets_registry/data/iu_xray/indiana_reports.csv .bench-data/
    ls -la .whl .bench-data
    exit 0
fi

python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
export PYTHONPATH="/tmp/site:$PWD" PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
out="${OUT:-/tmp}/gpu_reward_step.txt"
{
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || echo "no nvidia-smi"
    python3 -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__)"
    python3 benchmarks/rewards.py --device cuda --dtype bfloat16 --edits --reports .bench-data/indiana_reports.csv \
        --models-dir /tmp/editgrpo-gpu-bench-models "$@"
} 2>&1 | grep -v -i -E "warn|Loading weights" | tee "$out"
