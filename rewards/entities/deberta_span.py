"""DeBERTa-v2/v3 attention over only the relative positions a batch can have: same result, less work.

In every layer DeBERTa-v3 projects all 2 x 256 relative-position embeddings, repeats them for
each sequence, scores every token against all of them, and then gathers the few that a sequence
of n tokens uses. For a 20-token sentence over 90 % of that work is thrown away, and on CPU it
is most of RaTE-NER's time. While every distance |i - j| < n lies in DeBERTa's un-bucketed range
(n - 1 <= position_buckets / 2), the rows used are exactly `att_span - n + 1 ... att_span + n - 1`,
so handing each layer only rows `att_span - n ... att_span + n` with span n gives the same
attention (same rows, same dot products; `tests/test_relative_span.py` compares the logits).
Longer batches, and models this does not recognise, run unchanged.
"""
from __future__ import annotations

import threading
import weakref
from contextlib import contextmanager
from typing import Iterator

_locks: "weakref.WeakKeyDictionary[object, threading.Lock]" = weakref.WeakKeyDictionary()
_locks_guard = threading.Lock()


def _model_lock(model) -> threading.Lock:
    """One lock per model: narrowing changes the (process-wide) model for one forward pass, so every
    forward pass through `narrowed_relative_span` on that model, narrowed or not, holds it."""
    with _locks_guard:
        return _locks.setdefault(model, threading.Lock())


def narrowable_span(model, seq_len: int) -> int | None:
    """The model's relative-attention span if a batch of `seq_len` tokens can use a narrowed one, else None."""
    encoder = getattr(getattr(model, "base_model", None), "encoder", None)
    layers = getattr(encoder, "layer", None)
    if not getattr(encoder, "relative_attention", False) or not layers or not callable(getattr(encoder, "get_rel_embedding", None)):
        return None
    attentions = [getattr(getattr(layer, "attention", None), "self", None) for layer in layers]
    spans = {getattr(a, "pos_ebd_size", None) for a in attentions}
    buckets = {getattr(a, "position_buckets", None) for a in attentions}
    if len(spans) != 1 or len(buckets) != 1 or None in spans or None in buckets:
        return None
    (span,), (bucket_count,) = spans, buckets
    within_buckets = bucket_count <= 0 or seq_len - 1 <= bucket_count // 2
    return span if 1 <= seq_len < span and within_buckets else None


@contextmanager
def narrowed_relative_span(model, seq_len: int) -> Iterator[bool]:
    """Within the block, `model` attends over a relative span of `seq_len` (yields whether it could).

    Holds the model's lock for the whole block, so run the forward pass inside it; not re-entrant.
    """
    with _model_lock(model):
        span = narrowable_span(model, seq_len)
        if span is None:
            yield False
            return
        encoder = model.base_model.encoder
        attentions = [layer.attention.self for layer in encoder.layer]
        full_embeddings = encoder.get_rel_embedding
        encoder.get_rel_embedding = lambda: full_embeddings()[span - seq_len:span + seq_len]
        for attention in attentions:
            attention.pos_ebd_size = seq_len
        try:
            yield True
        finally:
            del encoder.get_rel_embedding
            for attention in attentions:
                attention.pos_ebd_size = span
