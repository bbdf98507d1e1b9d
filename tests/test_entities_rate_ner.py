"""The `rate` backend (RaTE-NER DeBERTa-v2 + MPNet embedder) on tiny random models built here.

Real loading, batching, decoding and pooling code; predictions are random, so assertions are
about structure: shapes, span alignment, determinism, batch == single, errors.
"""
import shutil

import numpy as np
import pytest
import torch

from rewards.entities.backends import build_analyzer
from rewards.entities.types import ENTITY_TYPES, sentence_of
from rewards.entities.rate_ner import RateAnalyzer, decode_bio, parse_labels, tagged_sentences
from rewards.paths import check_model_dir
from rewards.testing import RATE_LABELS


@pytest.fixture(scope="module")
def analyzer(rate_dirs):
    return RateAnalyzer(*rate_dirs, device="cpu", batch_size=3)


@pytest.fixture(scope="module")
def reports(iu_findings):
    return [iu_findings[0], "", iu_findings[7], iu_findings[0], "No terminator here", "Cœur normal. 肺 clear.",
            iu_findings[30], "   "]


def test_labels_are_rates_eleven():
    assert len(RATE_LABELS) == 11 and RATE_LABELS[0] == "O"
    parsed = parse_labels(dict(enumerate(RATE_LABELS)))
    assert parsed[0] is None and parsed[1] == ("B", "ABNORMALITY") and parsed[4] == ("I", "NON-ABNORMALITY")
    with pytest.raises(ValueError, match="not BIO"):
        parse_labels({0: "O", 1: "LABEL_1"})


def test_decode_bio_follows_the_reference():
    text = "No pleural effusion or edema."
    offsets = [(0, 0), (0, 2), (2, 10), (10, 19), (19, 22), (22, 28), (28, 29), (0, 0)]
    B, I = (lambda t: ("B", t)), (lambda t: ("I", t))
    labels = [None, None, B("NON-ABNORMALITY"), I("NON-ABNORMALITY"), None, B("NON-ABNORMALITY"), None, B("ANATOMY")]
    assert decode_bio(labels, offsets, text) == [(3, 19, "NON-ABNORMALITY"), (23, 28, "NON-ABNORMALITY")]
    # a stray I (no open entity of that type) is dropped; a type switch inside I closes the entity
    labels = [None, I("ANATOMY"), B("ABNORMALITY"), I("DISEASE"), I("DISEASE"), None, None, None]
    assert decode_bio(labels, offsets, text) == [(3, 10, "ABNORMALITY")]
    # B B gives two entities; an entity running to the last token is closed
    labels = [None, None, B("ABNORMALITY"), B("ABNORMALITY"), None, None, I("ANATOMY"), None]
    assert decode_bio(labels, offsets, text) == [(3, 10, "ABNORMALITY"), (11, 19, "ABNORMALITY")]


def test_shapes_alignment_and_types(analyzer, reports):
    results = analyzer.analyze(reports)
    assert len(results) == len(reports)
    hidden = analyzer.embed_model.config.hidden_size
    assert sum(len(r.entities) for r in results) > 0
    for result in results:
        assert result.embeddings.shape == (len(result.entities), hidden) and result.embeddings.dtype == np.float32
        if len(result.entities):
            assert np.allclose(np.linalg.norm(result.embeddings, axis=1), 1.0, atol=1e-5)
        for entity in result.entities:
            assert result.text[entity.start:entity.end] == entity.text == entity.text.strip() != ""
            assert entity.type in ENTITY_TYPES
            assert entity.sentence == sentence_of(entity.text, result.sentences)
        starts = [e.start for e in result.entities]
        assert starts == sorted(starts)
    assert results[1].entities == () and results[7].entities == () and results[1].embeddings.shape == (0, hidden)


def test_batch_equals_single_and_determinism(rate_dirs, analyzer, reports):
    batched = analyzer.analyze(reports)
    again = RateAnalyzer(*rate_dirs, device="cpu", batch_size=8).analyze(reports)
    for index, report in enumerate(reports):
        single = analyzer.analyze([report])[0]
        for other in (single, again[index]):
            assert other.entities == batched[index].entities
            np.testing.assert_allclose(other.embeddings, batched[index].embeddings, atol=2e-5)
    assert batched[0].entities == batched[3].entities  # duplicates inside one batch


def test_sentence_unit_tags_each_sentence_on_its_own(rate_dirs, analyzer, reports):
    """RaTEScore's NER unit: the spans of a report are its sentences' own spans, shifted to report offsets."""
    by_sentence = RateAnalyzer(*rate_dirs, device="cpu", batch_size=3, ner_unit="sentence")
    texts = list(reports) + ["A. No pneumothorax. ab", "Heart size normal\nNo pleural effusion"]
    assert tagged_sentences(texts[-2]) == [(3, "No pneumothorax.")]  # sentences under 3 characters are not read
    assert tagged_sentences(texts[-1]) == [(0, "Heart size normal"), (18, "No pleural effusion")]  # a line break ends one
    tagged = by_sentence.tag(texts)
    assert sum(map(len, tagged)) > 0
    for text, spans in zip(texts, tagged):
        sentences = tagged_sentences(text)
        expected = [(start + s, start + e, kind) for start, sentence in sentences for s, e, kind in analyzer.tag([sentence])[0]]
        assert spans == expected
        assert all(any(start <= s < e <= start + len(sentence) for start, sentence in sentences) for s, e, _ in spans)
    with pytest.raises(ValueError, match="ner_unit"):
        RateAnalyzer(*rate_dirs, ner_unit="word")


def test_pooling_options(rate_dirs, analyzer):
    phrases = ["pleural effusion", "heart", "right lower lobe airspace opacity"]
    masked = analyzer.embed(phrases)
    # masked mean == mean over the phrase's own tokens, whatever else is in the batch
    tokens = analyzer.embed_tokenizer(["heart"], return_tensors="pt")
    with torch.inference_mode():
        alone = analyzer.embed_model(**tokens).last_hidden_state.mean(dim=1)
    np.testing.assert_allclose(masked[1], torch.nn.functional.normalize(alone, dim=-1)[0].numpy(), atol=1e-5)
    unmasked = RateAnalyzer(*rate_dirs, device="cpu", pooling="unmasked_mean")
    # the reference's unmasked mean depends on the batch (padding); that is why it is not the default
    assert not np.allclose(unmasked.embed(phrases)[1], unmasked.embed(["heart"])[0], atol=1e-4)
    np.testing.assert_allclose(unmasked.embed(["heart"])[0], masked[1], atol=1e-5)  # no padding: same
    cls = RateAnalyzer(*rate_dirs, device="cpu", pooling="cls").embed(phrases)
    assert cls.shape == masked.shape and not np.allclose(cls, masked)
    with pytest.raises(ValueError, match="pooling"):
        RateAnalyzer(*rate_dirs, pooling="max")
    with pytest.raises(ValueError, match="dtype"):
        RateAnalyzer(*rate_dirs, dtype="bf16")


def test_bfloat16_runs(rate_dirs, iu_findings):
    result = RateAnalyzer(*rate_dirs, device="cpu", dtype="bfloat16").analyze(iu_findings[:2])
    assert all(r.embeddings.dtype == np.float32 for r in result)


def test_forced_labels_give_token_spans(rate_dirs, tmp_path, iu_findings):
    """Classifier forced to B-ANATOMY everywhere: every non-special token is its own entity, with
    exactly the tokenizer's character offsets; forced to I-ANATOMY: all stray, no entity."""
    ner_dir, embedder_dir = rate_dirs
    for label, expect_tokens in (("B-ANATOMY", True), ("I-ANATOMY", False)):
        forced = tmp_path / label
        shutil.copytree(ner_dir, forced)
        analyzer = RateAnalyzer(forced, embedder_dir, device="cpu")
        classifier = analyzer.ner_model.classifier
        with torch.no_grad():
            classifier.weight.zero_()
            classifier.bias.fill_(-10.0)
            classifier.bias[RATE_LABELS.index(label)] = 10.0
        text = iu_findings[0]
        result = analyzer.analyze([text])[0]
        if not expect_tokens:
            assert result.entities == ()
            continue
        encoded = analyzer.ner_tokenizer(text, return_offsets_mapping=True, return_special_tokens_mask=True)
        spans = [(s, e) for (s, e), special in zip(encoded["offset_mapping"], encoded["special_tokens_mask"])
                 if not special and text[s:e].strip()]
        trimmed = [(s + len(text[s:e]) - len(text[s:e].lstrip()), e - (len(text[s:e]) - len(text[s:e].rstrip())))
                   for s, e in spans]
        assert [(e.start, e.end) for e in result.entities] == trimmed
        assert all(e.type == "ANATOMY" for e in result.entities)


def test_long_report_is_truncated_not_failed(analyzer, iu_findings):
    long = " ".join([iu_findings[0]] * 400)  # ~14,000 words
    result = analyzer.analyze([long])[0]
    assert len(result.sentences) == 2000
    assert all(e.end <= len(long) for e in result.entities)
    assert max((e.end for e in result.entities), default=0) < len(long) // 10  # only the first 512 tokens


def test_factory_builds_rate(rate_dirs):
    analyzer = build_analyzer("rate", ner_dir=rate_dirs[0], embedder_dir=rate_dirs[1], device="cpu",
                              dtype="float32", batch_size=4, pooling="mean")
    assert analyzer.name == "rate" and analyzer.batch_size == 4


def test_missing_and_partial_dirs(rate_dirs, tmp_path, monkeypatch):
    ner_dir, embedder_dir = rate_dirs
    with pytest.raises(FileNotFoundError, match="RaTE-NER model dir .*nope does not exist"):
        RateAnalyzer(tmp_path / "nope", embedder_dir)
    for missing in ("model.safetensors", "tokenizer.json", "config.json"):
        partial = tmp_path / f"partial-{missing}"
        shutil.copytree(embedder_dir, partial)
        (partial / missing).unlink()
        with pytest.raises(FileNotFoundError, match=f"entity embedder model dir .* incomplete: missing .*{missing}"):
            RateAnalyzer(ner_dir, partial)
    sharded = tmp_path / "sharded"
    shutil.copytree(ner_dir, sharded)
    (sharded / "model.safetensors").unlink()
    (sharded / "model.safetensors.index.json").write_text(
        '{"weight_map": {"a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}}')
    with pytest.raises(FileNotFoundError, match="model-00001-of-00002.safetensors, model-00002-of-00002"):
        check_model_dir(sharded, "RaTE-NER")
    with pytest.raises(FileNotFoundError, match="could not be loaded"):
        RateAnalyzer("nobody/no-such-model", embedder_dir)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "models").mkdir()  # a mistyped dir under an existing folder: a local path, not a hub id
    with pytest.raises(FileNotFoundError, match="RaTE-NER model dir models/RaTE-NER-Deberta does not exist"):
        RateAnalyzer("models/RaTE-NER-Deberta", embedder_dir)
