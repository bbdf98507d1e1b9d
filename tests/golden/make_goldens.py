"""Parity goldens: the upstream packages' outputs on the same random-weight models we load.

`f1chexbert` and `radgraph` only run on transformers < 5, so this runs in two environments:

    # 1. in the project venv: build the tiny random models (deterministic: same seed -> same weights)
    .venv/bin/python tests/golden/make_goldens.py build /tmp/parity_models
    # 2. in a throwaway venv with the upstream packages (never the project venv), e.g.
    python3 -m venv /tmp/upvenv
    echo "$PWD/.venv/lib/python3.11/site-packages" > /tmp/upvenv/lib/python3.11/site-packages/zz_project.pth  # torch
    /tmp/upvenv/bin/pip install "transformers>=4.45,<4.58" "huggingface_hub<1.0" "tokenizers<0.23" "scikit-learn<1.8" \
        pandas appdirs jsonpickle dotmap nltk h5py filelock
    /tmp/upvenv/bin/pip install --no-deps radgraph==0.1.18 f1chexbert==0.0.2
    /tmp/upvenv/bin/python tests/golden/make_goldens.py upstream /tmp/parity_models tests/golden/parity.json

RaTEScore: `ratescore` needs medspacy (spaCy 3.7, numpy < 2) only for sentence splitting; the
golden runs its own `RaTEScore.compute_score` (the F1 combination, the 0.5 rule) and
`utils.compute` on fixed entity lists and embeddings, with medspacy stubbed and the package's
NER/embedding steps replaced by those fixed inputs (the entity analyzers are another module's
parity question). The package source is read from `--ratescore-src` (an unpacked
ratescore-0.6.0 wheel: `pip download --no-deps ratescore==0.6.0`).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CORPUS_SIZE = 400  # IU-XRay findings the tiny tokenizers are built from
SEED = 0
TEXT_INDICES = (0, 3, 7, 12, 25, 40, 77, 101, 150, 222)
EXTRA_TEXTS = (
    "No pneumothorax or pleural effusion.\nHeart size is normal.",
    "Keine akuten kardiopulmonalen Befunde. Herz normal gross.",
    "ok",
)


def corpus() -> list[str]:
    sys.path.insert(0, str(ROOT))
    from datasets_registry.iu_xray import read_findings

    return read_findings()


def golden_texts(findings: list[str]) -> list[str]:
    """Real reports, a few odd ones, and one long text (> 512 word pieces: CheXbert's cut)."""
    return [findings[i] for i in TEXT_INDICES] + list(EXTRA_TEXTS) + [" ".join(findings[200:215])]


def pairs(texts: list[str]) -> tuple[list[str], list[str]]:
    """Each text against its neighbour and against itself."""
    hyps = texts + texts
    refs = texts[1:] + texts[:1] + texts
    return hyps, refs


def rate_cases() -> list[dict]:
    """Fixed entity lists and embeddings (seeded), with every type pairing, negations and empty sides."""
    import numpy as np

    types_ = ["ABNORMALITY", "NON-ABNORMALITY", "DISEASE", "NON-DISEASE", "ANATOMY"]
    rng = np.random.default_rng(SEED)
    cases = []
    for i in range(24):
        n_hyp, n_ref = (0, 3) if i == 0 else (2, 0) if i == 1 else (int(rng.integers(1, 7)), int(rng.integers(1, 7)))
        base = rng.normal(size=(max(n_hyp, n_ref), 8))

        def side(n: int) -> dict:
            noise = rng.normal(size=(n, 8)) * float(rng.uniform(0.1, 2.0))
            return {"types": [types_[int(t)] for t in rng.integers(0, 5, size=n)], "embeddings": (base[:n] + noise).tolist()}

        cases.append({"hyp": side(n_hyp), "ref": side(n_ref)})
    return cases


def build(out: Path) -> None:
    """Project venv: the tiny CheXbert and RadGraph-XL dirs, and the affinity matrix our RaTEScore uses."""
    sys.path.insert(0, str(ROOT))
    from rewards.testing import build_chexbert, build_radgraph
    from rewards.entities.affinity import AFFINITY, NEGATION_WEIGHT

    findings = corpus()[:CORPUS_SIZE]
    build_chexbert(out, findings, "tiny", SEED)
    build_radgraph(out, findings, "tiny", SEED)
    matrix = {f"{a.lower()}_{b.lower()}": v for (a, b), v in AFFINITY.items()}
    matrix["neg_weight"] = NEGATION_WEIGHT
    (out / "affinity.json").write_text(json.dumps(matrix))


def run_chexbert(models: Path, texts: list[str]) -> dict:
    import f1chexbert.f1chexbert as upstream

    upstream.CACHE_DIR = str(models / "chexbert")  # the package reads its checkpoint from here
    scorer = upstream.F1CheXbert(device="cpu")  # 'bert-base-uncased' resolves to ./bert-base-uncased (cwd)
    to_class = {"": 0, 1: 1, 0: 2, -1: 3}
    classes = [[to_class[v] for v in scorer.get_label(t.strip(), mode="classification")] for t in texts]
    hyps, refs = pairs(texts)
    per_pair = [scorer([h], [r])[2]["micro avg"]["f1-score"] for h, r in zip(hyps, refs)]
    _, _, cr, cr5 = scorer(hyps, refs)
    corpus_values = {"chexbert_micro_f1_14": cr["micro avg"]["f1-score"], "chexbert_macro_f1_14": cr["macro avg"]["f1-score"],
                     "chexbert_micro_f1_5": cr5["micro avg"]["f1-score"], "chexbert_macro_f1_5": cr5["macro avg"]["f1-score"]}
    return {"texts": texts, "classes": classes, "pair_micro_f1_14": per_pair, "corpus": corpus_values}


def run_radgraph(models: Path, texts: list[str]) -> dict:
    from radgraph import F1RadGraph, RadGraph

    texts = [t for t in texts if t.strip()][:-1]  # the long text would exceed our word cut
    annotator = RadGraph(model_type="radgraph-xl", model_cache_dir=str(models), cuda=-1)
    annotations = annotator(texts)
    f1 = F1RadGraph(reward_level="all", model_type="radgraph-xl", model_cache_dir=str(models), cuda=-1)
    hyps, refs = pairs(texts)
    _, rewards, _, _ = f1(refs=refs, hyps=hyps)
    return {"texts": texts, "annotations": [annotations[str(i)] for i in range(len(texts))],
            "rewards": {"simple": rewards[0], "partial": rewards[1], "complete": rewards[2]}}


def run_ratescore(models: Path, src: Path) -> dict:
    import torch

    sys.modules["medspacy"] = types.SimpleNamespace(load=lambda **_: None)  # only used to split sentences
    sys.path.insert(0, str(src))
    import RaTEScore.scorer as upstream

    cases = rate_cases()
    hyps = [f"hyp {i}" for i in range(len(cases))]
    refs = [f"ref {i}" for i in range(len(cases))]
    by_text = {**{h: c["hyp"] for h, c in zip(hyps, cases)}, **{r: c["ref"] for r, c in zip(refs, cases)}}

    def fake_ner(texts, *_args):  # the package's NER output format: [(entity text, type), ...] per report
        return [[(f"{t}#{k}", kind) for k, kind in enumerate(by_text[t]["types"])] for t in texts]

    def fake_embedding(pair, *_args):
        if not pair:
            return torch.tensor([]), []
        owner = pair[0][0].split("#")[0]
        return torch.tensor(by_text[owner]["embeddings"], dtype=torch.float32), [kind for _, kind in pair]

    upstream.run_ner, upstream.process_embedding = fake_ner, fake_embedding
    scorer = object.__new__(upstream.RaTEScore)
    matrix = json.loads((models / "affinity.json").read_text())
    scorer.affinity_matrix = {(k.split("_")[0].upper(), k.split("_")[1].upper()): v for k, v in matrix.items()}
    scorer.idx2label, scorer.tokenizer, scorer.model, scorer.device, scorer.batch_size = {}, None, None, "cpu", 1
    scorer.eval_tokenizer, scorer.eval_model, scorer.visualization_path = None, None, None
    return {"cases": cases, "scores": scorer.compute_score(hyps, refs), "neg_weight": matrix["neg_weight"]}


def upstream(models: Path, out: Path, ratescore_src: Path) -> None:
    """Upstream venv: run the packages on the built models and write the goldens."""
    import transformers

    models = models.resolve()
    os.chdir(models)  # configs name the encoder 'bert-base-uncased', a dir here
    texts = golden_texts(corpus())
    goldens = {
        "made_with": {"transformers": transformers.__version__, "f1chexbert": "0.0.2", "radgraph": "0.1.18", "ratescore": "0.6.0",
                      "corpus_size": CORPUS_SIZE, "seed": SEED},
        "chexbert": run_chexbert(models, texts),
        "radgraph": run_radgraph(models, texts),
        "ratescore": run_ratescore(models, ratescore_src),
    }
    out.write_text(json.dumps(goldens, indent=1) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="step", required=True)
    b = sub.add_parser("build")
    b.add_argument("models", type=Path)
    u = sub.add_parser("upstream")
    u.add_argument("models", type=Path)
    u.add_argument("out", type=Path)
    u.add_argument("--ratescore-src", type=Path, default=Path("/tmp/up/src"))
    args = parser.parse_args()
    if args.step == "build":
        build(args.models)
    else:
        upstream(args.models, args.out.resolve(), args.ratescore_src)


if __name__ == "__main__":
    main()
