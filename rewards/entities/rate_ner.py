"""RaTE-NER + BioLORD entity analyzer, from local model dirs (docs/algorithm.md §2).

* NER: a DeBERTa-v2/v3 token classifier (``Angelakeke/RaTE-NER-Deberta``), BIO labels over the
  5 RaTE types (11 labels, read from the dir's ``config.json`` ``id2label``). A sequence (a
  report or a sentence, below) is truncated at ``max_length`` (512) tokens: entities after the
  cut are not found. Sequences are tokenized once and batched by token count (least padding);
  DeBERTa attends over the batch's own relative span (`deberta_span`, exact).
* ``ner_unit``: ``report`` (default, docs/algorithm.md §2: the edit engine's analysis) tags the whole report
  as one sequence; ``sentence`` tags each sentence of >= 3 characters on its own, as the
  RaTEScore package does (it splits with medspacy; we use `split_sentences`). A sentence's tags
  depend on the sentence alone, so distinct sentences are tagged once and their spans kept in an
  LRU (``span_cache_size``): "No pneumothorax." is tagged once per process, not once per report.
* Span decoding follows the reference: ``B-X`` opens an entity, ``I-X`` extends an open ``X``,
  anything else closes it, and a stray ``I-X`` (no open ``X``) is dropped. The entity text is
  the report's own characters between the first and last token (fast-tokenizer offsets), so
  spans always align with `ReportAnalysis.text`.
* Embeddings: an MPNet encoder (``FremyCompany/BioLORD-2023-C``), L2-normalised. ``pooling``:
  ``mean`` (default) = masked mean over real tokens, independent of batching; entity texts are
  de-duplicated over the whole call, batched by token count, and their vectors kept in an LRU
  across calls (``embed_cache_size`` phrases, ~3 KB each at 768 dims). ``unmasked_mean`` = the
  reference's mean over padding too, computed like the reference (one batch per report, never
  cached) for exact reproduction.
  ``cls`` = the [CLS] vector (RaTEScore's own choice).

Bad input: empty/whitespace-only reports get no entities and skip the models; non-ASCII text
goes through the tokenizer as is.
"""
from __future__ import annotations

import os
from typing import Sequence

import numpy as np

from rewards.entities.types import ENTITY_TYPES, Entity, ReportAnalysis, sentence_of
from rewards.batching import LRUCache, length_batches
from rewards.config import DTYPES
from rewards.paths import check_model_dir, hub_id_shaped
from rewards.entities.deberta_span import narrowed_relative_span
from templates.report import normalize, split_sentences

POOLINGS: tuple[str, ...] = ("mean", "unmasked_mean", "cls")
NER_UNITS: tuple[str, ...] = ("report", "sentence")
MIN_SENTENCE_CHARS = 3  # RaTEScore tags only sentences with a word and at least 3 characters


def parse_labels(id2label: dict) -> dict[int, tuple[str, str] | None]:
    """label id -> ("B"|"I", type) or None for "O"; ValueError unless BIO over the RaTE types."""
    parsed: dict[int, tuple[str, str] | None] = {}
    for raw_id, raw_label in id2label.items():
        label = str(raw_label).upper()
        if label == "O":
            parsed[int(raw_id)] = None
            continue
        prefix, _, kind = label.partition("-")
        if prefix not in ("B", "I") or kind not in ENTITY_TYPES:
            raise ValueError(f"NER label {raw_label!r} is not BIO over {ENTITY_TYPES} (config.json id2label)")
        parsed[int(raw_id)] = (prefix, kind)
    return parsed


def tagged_sentences(report: str) -> list[tuple[int, str]]:
    """(start offset in `normalize(report)`, sentence) of the report's sentences that sentence-level NER reads.

    Sentences come from the report itself, not its normalised text: a line break separates
    sentences and normalising turns it into a space.
    """
    text = normalize(report)
    located, cursor = [], 0
    for sentence in split_sentences(report):
        start = text.find(sentence, cursor)
        cursor = start + len(sentence)
        if len(sentence) >= MIN_SENTENCE_CHARS and sentence.split():
            located.append((start, sentence))
    return located


def decode_bio(
    labels: Sequence[tuple[str, str] | None], offsets: Sequence[tuple[int, int]], text: str
) -> list[tuple[int, int, str]]:
    """Character spans (start, end, type) from per-token BIO labels and offsets.

    Tokens with an empty offset (special tokens, padding) are skipped. Leading/trailing
    whitespace inside a span (offsets of sentencepiece word starts) is trimmed.
    """
    spans: list[tuple[int, int, str]] = []
    current: list = []  # [start, end, type]

    def close() -> None:
        if current:
            start, end, kind = current
            while start < end and text[start].isspace():
                start += 1
            while end > start and text[end - 1].isspace():
                end -= 1
            if end > start:
                spans.append((start, end, kind))
            current.clear()

    for label, (start, end) in zip(labels, offsets):
        if end <= start:
            continue
        if label is not None and label[0] == "B":
            close()
            current.extend((start, end, label[1]))
        elif label is not None and current and current[2] == label[1]:
            current[1] = end
        else:
            close()
    close()
    return spans


class RateAnalyzer:
    """The `EntityAnalyzer` protocol over RaTE-NER + a BioLORD-style embedder (module docstring)."""

    name = "rate"

    def __init__(
        self,
        ner_dir: str | os.PathLike,
        embedder_dir: str | os.PathLike,
        device: str = "auto",
        dtype: str = "float32",
        batch_size: int = 32,
        pooling: str = "mean",
        max_length: int = 512,
        embed_max_length: int = 128,
        embed_cache_size: int = 16384,
        ner_unit: str = "report",
        span_cache_size: int = 16384,
    ):
        import torch

        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
        if ner_unit not in NER_UNITS:
            raise ValueError(f"ner_unit must be one of {NER_UNITS}, got {ner_unit!r}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.pooling = pooling
        self.batch_size = batch_size
        self.max_length = max_length
        self.embed_max_length = embed_max_length
        self.ner_unit = ner_unit
        self.embed_cache: LRUCache[str, np.ndarray] = LRUCache(embed_cache_size)  # phrase -> vector (see `embed`)
        self.span_cache: LRUCache[str, tuple] = LRUCache(span_cache_size)  # sentence -> spans (ner_unit "sentence")
        self.device = torch.device("cuda" if device == "auto" and torch.cuda.is_available() else
                                   "cpu" if device == "auto" else device)
        if isinstance(dtype, str) and dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {DTYPES} or a torch.dtype, got {dtype!r}")
        self.dtype = getattr(torch, dtype) if isinstance(dtype, str) else dtype
        self.ner_tokenizer, self.ner_model = self._load(ner_dir, "RaTE-NER", token_classifier=True)
        self.labels = parse_labels(self.ner_model.config.id2label)
        self.embed_tokenizer, self.embed_model = self._load(embedder_dir, "entity embedder", token_classifier=False)

    def _load(self, location: str | os.PathLike, role: str, token_classifier: bool):
        from transformers import AutoModel, AutoModelForTokenClassification, AutoTokenizer

        source = str(location)
        if not hub_id_shaped(source):
            source = str(check_model_dir(source, role))
        model_class = AutoModelForTokenClassification if token_classifier else AutoModel
        try:
            tokenizer = AutoTokenizer.from_pretrained(source)
            model = model_class.from_pretrained(source)
        except OSError as err:
            raise FileNotFoundError(f"{role} model {source!r} could not be loaded from a local dir or the "
                                    f"local Hugging Face cache: {err}") from err
        if not tokenizer.is_fast:
            raise ValueError(f"{role} model {source!r} needs a fast tokenizer (tokenizer.json) for character offsets")
        return tokenizer, model.to(device=self.device, dtype=self.dtype).eval()

    def analyze(self, reports: Sequence[str]) -> list[ReportAnalysis]:
        texts = [normalize(r) for r in reports]
        sentences = [tuple(split_sentences(r)) for r in reports]
        spans = self.tag(reports)
        entities = [
            tuple(Entity(text[s:e], kind, s, e, sentence_of(text[s:e], sents)) for s, e, kind in report_spans)
            for text, sents, report_spans in zip(texts, sentences, spans)
        ]
        embeddings = self._entity_embeddings([[e.text for e in ents] for ents in entities])
        return [ReportAnalysis(t, s, e, m) for t, s, e, m in zip(texts, sentences, entities, embeddings)]

    def tag(self, reports: Sequence[str]) -> list[list[tuple[int, int, str]]]:
        """NER spans (character offsets in the normalised report) per report, by report or by sentence (``ner_unit``)."""
        if self.ner_unit == "report":
            return self._tag_sequences([normalize(r) for r in reports])
        located = [tagged_sentences(r) for r in reports]
        distinct = dict.fromkeys(sentence for sentences in located for _, sentence in sentences)
        spans = {sentence: self.span_cache.get(sentence) for sentence in distinct}  # one lookup per distinct sentence
        unseen = [sentence for sentence, found in spans.items() if found is None]
        for sentence, found in zip(unseen, self._tag_sequences(unseen)):
            spans[sentence] = tuple(found)
            self.span_cache.put(sentence, spans[sentence])
        return [[(start + s, start + e, kind) for start, sentence in sentences for s, e, kind in spans[sentence]]
                for sentences in located]

    def _tag_sequences(self, texts: Sequence[str]) -> list[list[tuple[int, int, str]]]:
        """NER spans per sequence; each tokenized once, batches sorted by token count."""
        import torch

        results: list[list[tuple[int, int, str]]] = [[] for _ in texts]
        present = [i for i, t in enumerate(texts) if t]
        if not present:
            return results
        encoded = self.ner_tokenizer([texts[i] for i in present], return_offsets_mapping=True,
                                     return_special_tokens_mask=True, truncation=True, max_length=self.max_length)
        for batch in length_batches([len(ids) for ids in encoded["input_ids"]], self.batch_size):
            inputs = _padded(self.ner_tokenizer, encoded, batch).to(self.device)
            with torch.inference_mode(), narrowed_relative_span(self.ner_model, inputs["input_ids"].shape[1]):
                predicted = self.ner_model(**inputs).logits.argmax(dim=-1).cpu().tolist()
            for row, b in enumerate(batch):
                offsets = [(0, 0) if special else span
                           for span, special in zip(encoded["offset_mapping"][b], encoded["special_tokens_mask"][b])]
                labels = [self.labels.get(p) for p in predicted[row][:len(offsets)]]
                results[present[b]] = decode_bio(labels, offsets, texts[present[b]])
        return results

    def embed(self, phrases: Sequence[str]) -> np.ndarray:
        """(len(phrases), dim) float32 L2-normalised.

        A phrase's vector depends only on the phrase (it is encoded on its own tokens; pooling and
        max length are fixed per analyzer), so distinct phrases are encoded once, batched by token
        count, and kept in an LRU (`embed_cache`): reports repeat "heart", "pleural effusion" all
        the time. Except ``unmasked_mean``: the batch (all given phrases, the reference's) changes
        the vectors, so it is computed as the reference does and never cached.
        """
        if not phrases:
            return np.zeros((0, self.embed_model.config.hidden_size), dtype=np.float32)
        if self.pooling == "unmasked_mean":
            encoded = self._tokenize_phrases(phrases)
            return self._encode(encoded, range(len(phrases)))
        vectors = {p: self.embed_cache.get(p) for p in dict.fromkeys(phrases)}
        missing = [p for p, vector in vectors.items() if vector is None]
        if missing:
            encoded = self._tokenize_phrases(missing)
            for batch in length_batches([len(ids) for ids in encoded["input_ids"]], self.batch_size):
                for b, vector in zip(batch, self._encode(encoded, batch)):
                    vector = vectors[missing[b]] = vector.copy()  # a row of its own: the cache must not pin the batch
                    self.embed_cache.put(missing[b], vector)
        return np.stack([vectors[p] for p in phrases])

    def _entity_embeddings(self, per_report: list[list[str]]) -> list[np.ndarray]:
        if self.pooling == "unmasked_mean":
            return [self.embed(phrases) for phrases in per_report]
        flat = self.embed([p for phrases in per_report for p in phrases])
        bounds = np.cumsum([0] + [len(p) for p in per_report])
        return [flat[bounds[i]:bounds[i + 1]] for i in range(len(per_report))]

    def _tokenize_phrases(self, phrases: Sequence[str]):
        return self.embed_tokenizer(list(phrases), truncation=True, max_length=self.embed_max_length)

    def _encode(self, encoded, rows: Sequence[int]) -> np.ndarray:
        """Pooled, L2-normalised float32 vectors of the tokenized phrases `rows`, run as one batch."""
        import torch

        inputs = _padded(self.embed_tokenizer, encoded, rows).to(self.device)
        with torch.inference_mode():
            hidden = self.embed_model(**inputs).last_hidden_state.float()
        if self.pooling == "cls":
            pooled = hidden[:, 0]
        elif self.pooling == "unmasked_mean":
            pooled = hidden.mean(dim=1)
        else:
            mask = inputs["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)
        pooled = torch.nn.functional.normalize(pooled, dim=-1)
        return pooled.cpu().numpy().astype(np.float32)


def _padded(tokenizer, encoded, rows: Sequence[int]):
    """The model inputs of the tokenized texts `rows`, right-padded into one tensor batch."""
    features = {name: [encoded[name][r] for r in rows] for name in tokenizer.model_input_names if name in encoded}
    return tokenizer.pad(features, padding_side="right", return_tensors="pt")
