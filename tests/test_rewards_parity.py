"""Same weights -> same outputs as the upstream packages (goldens made by tests/golden/make_goldens.py).

`f1chexbert==0.0.2` and `radgraph==0.1.18` were run (transformers 4.57, in a separate venv) on
the tiny random models that `make_goldens.build` rebuilds here bit for bit; RaTEScore's own
`compute_score` on fixed entities/embeddings.
"""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.usefixtures("one_torch_thread")
GOLDEN_DIR = Path(__file__).parent / "golden"
GOLDENS = json.loads((GOLDEN_DIR / "parity.json").read_text())


def _make_goldens():
    spec = importlib.util.spec_from_file_location("make_goldens", GOLDEN_DIR / "make_goldens.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def parity_models(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("parity_models")
    _make_goldens().build(out)
    return out


def test_golden_inputs_are_rebuilt_identically(iu_findings):
    goldens = _make_goldens()
    assert goldens.golden_texts(iu_findings) == GOLDENS["chexbert"]["texts"]


def test_chexbert_labels_and_f1_match_f1chexbert(parity_models):
    from rewards.chexbert import CheXbertScorer, CONDITIONS

    golden = GOLDENS["chexbert"]
    scorer = CheXbertScorer(parity_models / "chexbert" / "chexbert.pth", parity_models / "bert-base-uncased", batch_size=4)
    classes = scorer.labels(golden["texts"])
    assert classes.shape == (len(golden["texts"]), len(CONDITIONS))
    assert classes.tolist() == golden["classes"]
    assert len({tuple(row) for row in golden["classes"]}) > 5  # the random model is not constant
    hyps, refs = _make_goldens().pairs(golden["texts"])
    np.testing.assert_allclose(scorer.score(hyps, refs).values, golden["pair_micro_f1_14"], rtol=0, atol=1e-12)
    corpus = scorer.corpus(hyps, refs)
    for key, value in golden["corpus"].items():
        assert corpus[key] == pytest.approx(value, abs=1e-12), key


def test_radgraph_annotations_and_rewards_match_radgraph(parity_models):
    from rewards.radgraph import RadGraphModel, RadGraphScorer

    golden = GOLDENS["radgraph"]
    texts = golden["texts"]
    model = RadGraphModel(parity_models / "radgraph-xl", parity_models / "bert-base-uncased")
    graphs = model.annotate(texts, batch_size=5)  # several reports per forward pass, upstream runs one
    for graph, expected in zip(graphs, golden["annotations"]):
        assert graph.to_radgraph_json() == {"text": expected["text"], "entities": expected["entities"]}
    assert sum(len(g.entities) for g in graphs) > 20 and any(e.relations for g in graphs for e in g.entities)

    scorer = RadGraphScorer(parity_models / "radgraph-xl", parity_models / "bert-base-uncased", batch_size=7)
    hyps, refs = _make_goldens().pairs(texts)
    result = scorer.score(hyps, refs)
    for level in ("simple", "partial", "complete"):
        np.testing.assert_allclose(result.components[f"{level}_f1"], golden["rewards"][level], rtol=0, atol=1e-12)
    assert result.values == result.components["partial_f1"]


def test_ratescore_formula_matches_ratescore_package():
    from rewards.entities.types import Entity, ReportAnalysis
    from rewards.entities.affinity import NEGATION_WEIGHT
    from rewards.ratescore import rate_scores

    golden = GOLDENS["ratescore"]
    assert golden["neg_weight"] == NEGATION_WEIGHT

    def analysis(side: dict) -> ReportAnalysis:
        entities = tuple(Entity(f"e{i}", kind, 0, 0, 0) for i, kind in enumerate(side["types"]))
        return ReportAnalysis("", (), entities, np.asarray(side["embeddings"], dtype=np.float32).reshape(len(entities), 8))

    ours = [rate_scores(analysis(case["hyp"]), analysis(case["ref"]))["score"] for case in golden["cases"]]
    np.testing.assert_allclose(ours, golden["scores"], rtol=0, atol=1e-5)  # upstream computes in float32 torch
    assert golden["scores"][0] == golden["scores"][1] == 0.5  # one side without entities
