"""Narrowed DeBERTa relative span: the same logits as the full model, on a tiny DeBERTa-v3-shaped model."""
import pytest
import torch

from rewards.entities.deberta_span import narrowable_span, narrowed_relative_span


@pytest.fixture(scope="module")
def ner(rate_dirs):
    from transformers import AutoModelForTokenClassification

    ner_dir, _ = rate_dirs
    return AutoModelForTokenClassification.from_pretrained(ner_dir).eval()


@pytest.mark.parametrize("seq_len", [1, 7, 40, 129])
def test_narrowed_span_gives_the_same_logits(ner, seq_len):
    torch.manual_seed(seq_len)
    input_ids = torch.randint(5, ner.config.vocab_size, (3, seq_len))
    attention_mask = torch.ones_like(input_ids)
    attention_mask[0, seq_len // 2 + 1:] = 0  # padded rows keep working
    with torch.inference_mode():
        full = ner(input_ids=input_ids, attention_mask=attention_mask).logits
        with narrowed_relative_span(ner, seq_len) as narrowed:
            assert narrowed and {layer.attention.self.pos_ebd_size for layer in ner.base_model.encoder.layer} == {seq_len}
            fast = ner(input_ids=input_ids, attention_mask=attention_mask).logits
    torch.testing.assert_close(fast, full, rtol=1e-5, atol=1e-5)
    assert {layer.attention.self.pos_ebd_size for layer in ner.base_model.encoder.layer} == {256}  # restored
    assert "get_rel_embedding" not in vars(ner.base_model.encoder)


def test_outside_the_exact_range_nothing_changes(ner):
    assert narrowable_span(ner, 130) is None  # distance 129 > 256 / 2: log-bucketed positions
    assert narrowable_span(ner, 0) is None
    with narrowed_relative_span(ner, 300) as narrowed:
        assert not narrowed and ner.base_model.encoder.layer[0].attention.self.pos_ebd_size == 256
    assert narrowable_span(torch.nn.Linear(2, 2), 10) is None  # not a DeBERTa: run as is


def test_concurrent_forward_passes_leave_the_model_intact(ner):
    """Threads narrowing to different lengths (and one too long to narrow) all get the full model's logits."""
    from concurrent.futures import ThreadPoolExecutor

    torch.manual_seed(0)
    batches = [torch.randint(5, ner.config.vocab_size, (2, n)) for n in (5, 31, 140, 9, 64, 200)]
    with torch.inference_mode():
        expected = [ner(input_ids=ids).logits for ids in batches]

        def narrowed(ids):
            with narrowed_relative_span(ner, ids.shape[1]):
                return ner(input_ids=ids).logits

        with ThreadPoolExecutor(max_workers=4) as pool:
            results = list(pool.map(narrowed, batches * 3))
    for got, want in zip(results, expected * 3):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    assert {layer.attention.self.pos_ebd_size for layer in ner.base_model.encoder.layer} == {256}
