"""Model-backed scorers on tiny random models of the exact architectures, through the real loading code.

CheXbert (BERT + 14 heads, chexbert.pth), RadGraph-XL (radgraph's DyGIE++ on BERT), RaTE-NER
(DeBERTa-v2 token classifier) + BioLORD (MPNet), all built here in the users' layout.
"""
from __future__ import annotations

import math
import shutil

import numpy as np
import pytest
import torch

import rewards
from rewards.paths import MissingWeightsError, ModelPaths, preflight

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture
def paths(scorer_models_dir) -> ModelPaths:
    return ModelPaths.from_env(scorer_models_dir, environ={})


def fresh(paths: ModelPaths, metric: str, batch_size: int = 4, cache_size: int = 64):
    return rewards.build_scorers([metric], backend="real", paths=paths, device="cpu", batch_size=batch_size, cache_size=cache_size)[metric]


def pairs(iu_findings, n: int = 10) -> tuple[list[str], list[str]]:
    """Rollout-like groups: 2 references, 5 hypotheses each (one repeated, one the reference itself)."""
    refs, hyps = [], []
    for g in range(n // 5):
        ref = iu_findings[100 + g]
        group = [iu_findings[200 + 5 * g + k] for k in range(3)] + [iu_findings[200 + 5 * g], ref]
        refs += [ref] * 5
        hyps += group
    return hyps, refs


METRICS = ("chexbert", "radgraph", "ratescore")


@pytest.mark.parametrize("metric", METRICS)
def test_batched_equals_one_pair_per_call(paths, iu_findings, metric):
    hyps, refs = pairs(iu_findings)
    batched = fresh(paths, metric, batch_size=4).score(hyps, refs)
    single = [fresh(paths, metric, batch_size=1, cache_size=0).score([h], [r]).values[0] for h, r in zip(hyps, refs)]
    np.testing.assert_allclose(batched.values, single, rtol=0, atol=1e-5)
    assert len(set(np.round(batched.values, 6))) > 1  # the random models do discriminate between reports
    assert all(math.isfinite(v) for column in batched.components.values() for v in column)


@pytest.mark.parametrize("metric", METRICS)
def test_order_independent_and_cache_hits_identical(paths, iu_findings, metric):
    hyps, refs = pairs(iu_findings)
    scorer = fresh(paths, metric)
    first = scorer.score(hyps, refs).values
    order = np.random.default_rng(0).permutation(len(hyps))
    shuffled = fresh(paths, metric).score([hyps[i] for i in order], [refs[i] for i in order]).values
    np.testing.assert_allclose(np.asarray(first)[order], shuffled, rtol=0, atol=1e-5)

    hits = scorer.cache.hits
    again = scorer.score(hyps, refs).values
    assert scorer.cache.hits > hits  # references came from the cache
    assert again == first


def test_distinct_texts_annotated_once(paths, iu_findings):
    scorer = fresh(paths, "chexbert")
    seen: list[list[str]] = []
    annotate = scorer.annotate
    scorer.annotate = lambda texts: seen.append(list(texts)) or annotate(texts)
    hyps, refs = pairs(iu_findings)
    scorer.score(hyps, refs)
    assert len(seen) == 1 and len(seen[0]) == len(set(seen[0])) == len(set(hyps) | set(refs))
    scorer.score([h + "  " for h in hyps[:5]], refs[:5])  # same normalised texts: nothing new to annotate
    assert len(seen) == 1


def test_composite_is_the_sum_and_keeps_components(paths, iu_findings):
    parts = rewards.build_scorers(METRICS, backend="real", paths=paths, device="cpu", batch_size=8)
    hyps, refs = pairs(iu_findings)
    result = rewards.ClinicalScorer(parts).score(hyps, refs)
    assert set(result.components) == {"radgraph_partial_f1", "chexbert_micro_f1_14", "ratescore"}
    np.testing.assert_allclose(result.values, np.sum(list(result.components.values()), axis=0))
    assert all(0.0 <= v <= 3.0 for v in result.values)


BAD_INPUTS = {
    "empty": "",
    "whitespace": "   \n ",
    "no sentence of 3 chars": "ok",
    "punctuation": ". . !",
    "non-English": "Keine akuten kardiopulmonalen Befunde. Herz normal groß. 心脏大小正常。",
    "eos strings": "No acute disease.<|im_end|>",
}


@pytest.mark.parametrize("metric", METRICS)
def test_bad_inputs_aligned_and_finite(paths, iu_findings, metric):
    long_text = " ".join(iu_findings[:400])  # ~10k word pieces: truncated, not a crash
    assert len(long_text.split()) > 8000
    hyps = list(BAD_INPUTS.values()) + [long_text, iu_findings[5]]
    refs = [iu_findings[5]] * (len(hyps) - 1) + ["ok"]  # last pair: RaTEScore upstream would shift scores here
    result = fresh(paths, metric).score(hyps, refs)
    assert len(result.values) == len(hyps)
    assert all(math.isfinite(v) for column in [result.values, *result.components.values()] for v in column)
    if metric == "radgraph":
        assert result.values[0] == 0.0  # no entities on one side -> 0
    if metric == "ratescore":
        assert result.values[0] == 0.5 and result.values[-1] == 0.5  # one side without entities -> 0.5


def test_text_cuts(paths, iu_findings):
    from rewards.chexbert import MAX_TOKENS
    from rewards.radgraph import DEFAULT_MAX_WORDS

    chexbert = fresh(paths, "chexbert")
    long_text = " ".join(iu_findings[:400])
    ids = chexbert.labeler.encode(long_text)
    assert len(ids) == MAX_TOKENS and ids[-1] == chexbert.labeler.tokenizer.sep_token_id
    radgraph = fresh(paths, "radgraph")
    assert len(radgraph.model.words(long_text)) == DEFAULT_MAX_WORDS


def test_factorised_relation_scores_match_upstream(paths, iu_findings, monkeypatch):
    """The split first layer computes upstream's relation scores, and the graphs do not change."""
    from radgraph.dygie.models.relation import RelationExtractor
    from rewards.radgraph import UPSTREAM_RELATION_SCORING

    model = fresh(paths, "radgraph").model
    relation = model.model._relation
    relation._active_namespace = next(iter(relation._relation_feedforwards))
    spans, mention = torch.randn(3, 7, relation._relation_feedforwards[relation._active_namespace].input_dim // 3), torch.randn(3, 7, 1)
    ours = relation._compute_relation_scores(relation._compute_span_pair_embeddings(spans), mention)
    upstream = UPSTREAM_RELATION_SCORING["scores"](relation, UPSTREAM_RELATION_SCORING["pairs"](spans), mention)
    torch.testing.assert_close(ours, upstream, rtol=1e-5, atol=1e-5)

    reports = iu_findings[:24]
    factorised = model.annotate(reports, batch_size=8)
    monkeypatch.setattr(RelationExtractor, "_compute_span_pair_embeddings", staticmethod(UPSTREAM_RELATION_SCORING["pairs"]))
    monkeypatch.setattr(RelationExtractor, "_compute_relation_scores", UPSTREAM_RELATION_SCORING["scores"])
    assert model.annotate(reports, batch_size=8) == factorised
    assert sum(len(e.relations) for g in factorised for e in g.entities) > 0  # the comparison covers relations


def test_models_load_once_per_process(paths):
    a, b = fresh(paths, "chexbert"), fresh(paths, "chexbert")
    assert a.labeler is b.labeler
    assert fresh(paths, "radgraph").model is fresh(paths, "radgraph").model


def test_explicit_dtype(paths, iu_findings):
    scorer = rewards.build_scorers(["chexbert"], paths=paths, device="cpu", dtype="bfloat16")["chexbert"]
    assert next(scorer.labeler.model.parameters()).dtype == torch.bfloat16
    assert len(scorer.score(iu_findings[:3], iu_findings[3:6]).values) == 3


def test_miskeyed_chexbert_checkpoint_is_rejected(paths, tmp_path):
    from rewards.chexbert import CheXbertCheckpointError, CheXbertLabeler

    state = torch.load(paths.chexbert_ckpt, weights_only=True)
    renamed = {k.replace("module.bert.", "module.encoder."): v for k, v in state["model_state_dict"].items()}
    bad = tmp_path / "chexbert.pth"
    torch.save({"model_state_dict": renamed}, bad)
    with pytest.raises(CheXbertCheckpointError, match="missing keys"):
        CheXbertLabeler(bad, paths.bert_dir)
    torch.save({"state_dict": state["model_state_dict"]}, bad)
    with pytest.raises(CheXbertCheckpointError, match="model_state_dict"):
        CheXbertLabeler(bad, paths.bert_dir)
    headless = {k: v for k, v in state["model_state_dict"].items() if "linear_heads.13" not in k}
    torch.save({"model_state_dict": headless}, bad)
    with pytest.raises(CheXbertCheckpointError, match="linear_heads.13"):
        CheXbertLabeler(bad, paths.bert_dir)


def test_missing_models_dir_gives_one_clear_error(tmp_path):
    empty = ModelPaths.from_env(tmp_path / "nothing", environ={})
    with pytest.raises(MissingWeightsError) as err:
        rewards.build_scorers(METRICS, backend="real", paths=empty)
    message = str(err.value)
    for needle in ("metric chexbert", "chexbert.pth", "StanfordAIMI/RRG_scorers", "metric radgraph", "radgraph-xl.tar.gz",
                   "metric ratescore", "Angelakeke/RaTE-NER-Deberta", "FremyCompany/BioLORD-2023-C", "bert-base-uncased",
                   "EDITGRPO_MODELS_DIR", "expected layout"):
        assert needle in message


@pytest.mark.parametrize("remove, needle", [
    (("radgraph-xl/weights.th",), "weights.th is missing"),
    (("radgraph-xl/vocabulary",), "vocabulary/ is missing"),
    (("bert-base-uncased/tokenizer.json", "bert-base-uncased/vocab.txt"), "no tokenizer file"),
    (("RaTE-NER-Deberta/model.safetensors",), "no weights"),
    (("BioLORD-2023-C/config.json",), "config.json is missing"),
    (("chexbert/chexbert.pth",), "chexbert.pth is missing"),
])
def test_partial_dirs_name_the_missing_file(scorer_models_dir, tmp_path, remove, needle):
    copy = tmp_path / "models"
    shutil.copytree(scorer_models_dir, copy)
    for relative in remove:
        target = copy / relative
        shutil.rmtree(target) if target.is_dir() else target.unlink()
    with pytest.raises(MissingWeightsError, match=needle):
        preflight(METRICS, ModelPaths.from_env(copy, environ={}))


def test_env_overrides_each_model(scorer_models_dir, tmp_path):
    moved = tmp_path / "elsewhere.pth"
    shutil.copy(scorer_models_dir / "chexbert" / "chexbert.pth", moved)
    env = {"EDITGRPO_MODELS_DIR": str(scorer_models_dir), "EDITGRPO_CHEXBERT_CKPT": str(moved)}
    resolved = ModelPaths.from_env(environ=env)
    assert resolved.chexbert_ckpt == moved and resolved.radgraph_dir == scorer_models_dir / "radgraph-xl"
    assert resolved.resolve_radgraph_encoder() == scorer_models_dir / "bert-base-uncased"
    preflight(METRICS, resolved)


def test_real_orm_on_tiny_models(scorer_models_dir, monkeypatch, iu_findings):
    from rewards import orms

    monkeypatch.setenv("EDITGRPO_REWARD_BACKEND", "real")
    monkeypatch.setenv("EDITGRPO_MODELS_DIR", str(scorer_models_dir))
    monkeypatch.setenv("EDITGRPO_DEVICE", "cpu")
    monkeypatch.setenv("EDITGRPO_BATCH_SIZE", "8")
    hyps, refs = pairs(iu_findings)
    clinical = orms.EditGRPOClinical()(hyps + [""], solution=refs + [refs[0]])
    parts = [cls()(hyps + [""], solution=refs + [refs[0]]) for cls in (orms.EditGRPORadGraph, orms.EditGRPOCheXbert, orms.EditGRPORaTEScore)]
    np.testing.assert_allclose(clinical, np.sum(parts, axis=0), atol=1e-9)
    assert len(clinical) == len(hyps) + 1 and all(math.isfinite(v) for v in clinical)


def test_hub_ids_are_accepted_only_online(monkeypatch, scorer_models_dir):
    from rewards.paths import is_hub_id, requirements

    env = {"EDITGRPO_MODELS_DIR": str(scorer_models_dir), "EDITGRPO_BERT_DIR": "google-bert/bert-base-uncased"}
    hub = ModelPaths.from_env(environ=env)
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    assert is_hub_id(hub.bert_dir) and all(problem is None for _, problem in requirements(["chexbert"], hub))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(MissingWeightsError, match="google-bert/bert-base-uncased"):
        preflight(["chexbert"], hub)


def test_score_command_real_backend(scorer_models_dir, tmp_path, iu_findings):
    import json

    from swift_plugins.editgrpo.cli import main

    (tmp_path / "h.txt").write_text("\n".join([iu_findings[0], "", iu_findings[2]]) + "\n")
    (tmp_path / "r.txt").write_text("\n".join([iu_findings[0], iu_findings[1], iu_findings[3]]) + "\n")
    out = tmp_path / "scores.jsonl"
    assert main(["score", "--hyps", str(tmp_path / "h.txt"), "--refs", str(tmp_path / "r.txt"), "--out", str(out),
                 "--backend", "real", "--models-dir", str(scorer_models_dir), "--device", "cpu"]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 3 and all(row["backend"] == "real" for row in rows)
    for row in rows:
        assert row["clinical"] == pytest.approx(row["chexbert_micro_f1_14"] + row["radgraph_partial_f1"] + row["ratescore"])
    assert rows[0]["chexbert_micro_f1_14"] == 1.0  # identical texts, same labels


def check_weights(models_dir, capsys) -> tuple[int, str, str]:
    from swift_plugins.editgrpo.cli import main

    code = main(["check-weights", "--models-dir", str(models_dir)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize("config, needle", [
    ("{not json", "config.json is not valid JSON"),
    ('{"model": {"embedder": {}}}', "names no encoder (model.embedder.token_embedders.bert.model_name is missing"),
    ('["radgraph"]', "names no encoder"),
])
def test_check_weights_reports_a_broken_radgraph_config(scorer_models_dir, tmp_path, capsys, config, needle):
    copy = tmp_path / "models"
    shutil.copytree(scorer_models_dir, copy)
    (copy / "radgraph-xl" / "config.json").write_text(config)
    code, out, err = check_weights(copy, capsys)
    assert code == 1 and needle in out and "metric radgraph" in out
    assert err.startswith("editgrpo check-weights: error: model files are missing") and "Traceback" not in out + err
    with pytest.raises(ValueError, match="extract radgraph-xl.tar.gz again"):
        ModelPaths.from_env(copy, environ={}).resolve_radgraph_encoder()


def test_check_weights_names_every_missing_file(scorer_models_dir, tmp_path, capsys):
    copy = tmp_path / "models"
    shutil.copytree(scorer_models_dir, copy)
    shutil.rmtree(copy / "radgraph-xl" / "vocabulary")
    for relative in ("radgraph-xl/weights.th", "RaTE-NER-Deberta/config.json", "RaTE-NER-Deberta/model.safetensors",
                     "BioLORD-2023-C/tokenizer.json", "BioLORD-2023-C/vocab.txt"):
        (copy / relative).unlink(missing_ok=True)
    code, out, _ = check_weights(copy, capsys)
    assert code == 1
    for needle in ("weights.th is missing", "vocabulary/ is missing", "RaTE-NER-Deberta/config.json is missing",
                   f"no weights (model.safetensors or pytorch_model.bin) in {copy / 'RaTE-NER-Deberta'}",
                   f"no tokenizer file (tokenizer.json or vocab.txt", "ok  chexbert"):
        assert needle in out, needle


def test_check_weights_hub_encoder_is_ok_only_when_cached(scorer_models_dir, tmp_path, capsys, monkeypatch):
    """A hub id that is not on disk is something to download (exit 1), not "ok", whatever HF_HUB_OFFLINE says."""
    import json

    import huggingface_hub.constants

    hub_id = "microsoft/BiomedNLP-BiomedBERT-base-uncased-abstract-fulltext"
    copy = tmp_path / "models"
    shutil.copytree(scorer_models_dir, copy)
    config_path = copy / "radgraph-xl" / "config.json"
    config = json.loads(config_path.read_text())
    config["model"]["embedder"]["token_embedders"]["bert"]["model_name"] = hub_id
    config_path.write_text(json.dumps(config))
    cache = tmp_path / "hub"
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.delenv("HF_HUB_OFFLINE")
    code, out, err = check_weights(copy, capsys)
    assert code == 1 and "ok  radgraph  RadGraph encoder" not in out
    assert f"hub radgraph  RadGraph encoder tokenizer/config ({hub_id}): {hub_id} is not on disk" in out
    assert f"https://huggingface.co/{hub_id}" in out and "1 model(s) are not on disk" in err

    snapshot = cache / f"models--{hub_id.replace('/', '--')}" / "snapshots" / ("0" * 40)
    shutil.copytree(copy / "bert-base-uncased", snapshot)
    (snapshot.parents[1] / "refs").mkdir()
    (snapshot.parents[1] / "refs" / "main").write_text("0" * 40)
    code, out, _ = check_weights(copy, capsys)
    assert code == 0 and f"ok  radgraph  RadGraph encoder tokenizer/config ({hub_id}): {hub_id}" in out
