"""RadGraph-F1 on the `radgraph` package's DyGIE++ model code, batched, on transformers 5.

Why not `radgraph.F1RadGraph`: its tokenizer wrapper calls `encode_plus` and
`build_inputs_with_special_tokens` (gone in transformers 5), and its loop runs one report per
forward pass. We keep its model code (same modules, same strict `weights.th` load, same
preprocessing) and add three things:

* a compatibility layer: the two tokenizer methods, re-added to the tokenizer instances the
  package's AllenNLP indexer asks for;
* batching: DyGIE only batches sentences of *one* document, and RadGraph feeds each report as a
  one-sentence document; NER and relations are per sentence (coref and events are off in the
  RadGraph archives), so many reports become the sentences of one document, one forward pass.
  One upstream bug needs a fix for that: relation decoding's keep mask (one entry per span)
  broadcasts over the last axis of a shorter sentence's padded span-pair matrix, so it masks the
  columns of padding slots but not their rows, which then produce relations; we cut the matrix to
  the sentence's own spans (a no-op for one sentence per pass).
* a factorised relation scorer: upstream builds every span pair's `[e_i, e_j, e_i * e_j]`
  (k x k x 3 x 1,556 floats per sentence: 0.5 GB for a batch of 32 sixty-word reports) and runs
  the relation feed-forward on it. Its first layer is linear, so `W [e_i, e_j, e_i*e_j] =
  W_1 e_i + W_2 e_j + W_3 (e_i*e_j)`: the first two terms are computed once per span, only the
  product per pair. Same function, a third of the FLOPs and memory (scores equal up to float
  rounding; `tests/test_rewards_models.py` checks it against the upstream path).

Reports are cut to `max_words` words before the model (span pairs grow quadratically; a
10k-token text would otherwise need gigabytes).
"""
from __future__ import annotations

import copy
import json
import logging
import threading
import warnings
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import torch

from rewards.batching import length_batches

from rewards.base import AnnotatingScorer, prf

LEVELS: tuple[str, ...] = ("simple", "partial", "complete")
DEFAULT_MAX_WORDS = 256
logging.getLogger("radgraph").setLevel(logging.ERROR)


@dataclass(frozen=True)
class GraphEntity:
    tokens: str
    label: str
    start: int
    end: int
    relations: tuple[tuple[str, int], ...]  # (relation label, index of the target entity in the report's entities)


@dataclass(frozen=True)
class Graph:
    """One report's RadGraph annotation (entities in model output order)."""

    text: str  # the model's whitespace-joined tokens
    entities: tuple[GraphEntity, ...]

    def to_radgraph_json(self) -> dict:
        """The `radgraph` package's per-report dict (entity ids are 1-based strings), for parity checks."""
        return {
            "text": self.text,
            "entities": {
                str(i + 1): {"tokens": e.tokens, "label": e.label, "start_ix": e.start, "end_ix": e.end,
                             "relations": [[label, str(target + 1)] for label, target in e.relations]}
                for i, e in enumerate(self.entities)
            },
        }


EMPTY_GRAPH = Graph(text="", entities=())


def graph_items(graph: Graph, level: str) -> set[tuple]:
    """The set each reward level compares (as radgraph's `compute_reward`)."""
    items: set[tuple] = set()
    for entity in graph.entities:
        if level == "simple" or not entity.relations:
            items.add((entity.tokens, entity.label))
        elif level == "partial":
            items.add((entity.tokens, entity.label, True))
        else:
            items.update((entity.tokens.lower(), entity.label, rel, graph.entities[target].tokens.lower())
                         for rel, target in entity.relations)
    return items


def graph_scores(hyp: Graph, ref: Graph) -> dict[str, float]:
    """P/R/F1 per level; all 0 if either side has no entities (radgraph's rule)."""
    out: dict[str, float] = {}
    for level in LEVELS:
        if not hyp.entities or not ref.entities:
            p = r = f = 0.0
        else:
            h, g = graph_items(hyp, level), graph_items(ref, level)
            p, r, f = prf(len(h & g), len(h), len(g))
        out.update({f"{level}_precision": p, f"{level}_recall": r, f"{level}_f1": f})
    return out


# ---- compatibility layer -------------------------------------------------------------------------

def _encode_plus(self, text, text_pair=None, **kwargs):
    return self(text, text_pair, **kwargs)


def _build_inputs_with_special_tokens(self, ids_0, ids_1=None):
    out = [self.cls_token_id] + list(ids_0) + [self.sep_token_id]
    return out if ids_1 is None else out + list(ids_1) + [self.sep_token_id]


_patch_lock = threading.Lock()
UPSTREAM_RELATION_SCORING: dict = {}  # the replaced RelationExtractor methods, for the equivalence test


@lru_cache(maxsize=1)
def _install_compat() -> None:
    """Tokenizer methods transformers 5 removed; relation decoding restricted to a sentence's own spans;
    the factorised relation scorer (the upstream pair functions stay in `UPSTREAM_RELATION_SCORING`)."""
    from radgraph.allennlp.common import cached_transformers
    from radgraph.dygie.models.relation import RelationExtractor

    UPSTREAM_RELATION_SCORING.update(pairs=RelationExtractor._compute_span_pair_embeddings,
                                     scores=RelationExtractor._compute_relation_scores)

    predict_sentence = RelationExtractor._predict_sentence

    def predict_own_spans(self, top_spans, relation_scores, num_spans_to_keep, sentence):
        keep = int(num_spans_to_keep)
        return predict_sentence(self, top_spans[:keep], relation_scores[:keep, :keep], num_spans_to_keep, sentence)

    RelationExtractor._predict_sentence = predict_own_spans
    RelationExtractor._compute_span_pair_embeddings = staticmethod(SpanPairs)
    RelationExtractor._compute_relation_scores = factorised_relation_scores
    original = cached_transformers.get_tokenizer

    def get_tokenizer(model_name: str, **kwargs):
        tokenizer = original(model_name, **kwargs)
        cls = type(tokenizer)
        with _patch_lock:
            if not hasattr(cls, "encode_plus"):
                cls.encode_plus = _encode_plus
            if not hasattr(cls, "build_inputs_with_special_tokens"):
                cls.build_inputs_with_special_tokens = _build_inputs_with_special_tokens
        return tokenizer

    cached_transformers.get_tokenizer = get_tokenizer


class SpanPairs:
    """What upstream's `_compute_span_pair_embeddings` would expand: the (batch, k, dim) top-span embeddings, kept unexpanded."""

    def __init__(self, top_span_embeddings: torch.Tensor):
        self.embeddings = top_span_embeddings


def factorised_relation_scores(self, pairs: SpanPairs, top_span_mention_scores: torch.Tensor) -> torch.Tensor:
    """Upstream `_compute_relation_scores` on `[e_i, e_j, e_i * e_j]`, with the first linear layer split by block."""
    feedforward = self._relation_feedforwards[self._active_namespace]
    scorer = self._relation_scorers[self._active_namespace]
    spans = pairs.embeddings
    first = feedforward._linear_layers[0]
    w_i, w_j, w_ij = first.weight.split(spans.size(-1), dim=1)
    hidden = (torch.nn.functional.linear(spans, w_i, first.bias).unsqueeze(2)
              + torch.nn.functional.linear(spans, w_j).unsqueeze(1)
              + torch.nn.functional.linear(spans.unsqueeze(2) * spans.unsqueeze(1), w_ij))
    hidden = feedforward._dropout[0](feedforward._activations[0](hidden))
    for layer, activation, dropout in zip(feedforward._linear_layers[1:], feedforward._activations[1:], feedforward._dropout[1:]):
        hidden = dropout(activation(layer(hidden)))
    scores = scorer(hidden) + (top_span_mention_scores.unsqueeze(-1) + top_span_mention_scores.transpose(1, 2).unsqueeze(-1))
    return torch.cat([scores.new_zeros(*scores.shape[:3], 1), scores], dim=-1)


def _pin_encoder(config: dict, encoder_dir: Path) -> dict:
    config = copy.deepcopy(config)
    config["dataset_reader"]["token_indexers"]["bert"]["model_name"] = str(encoder_dir)
    config["model"]["embedder"]["token_embedders"]["bert"]["model_name"] = str(encoder_dir)
    return config


def build_dygie(radgraph_dir: Path, encoder_dir: Path, config: dict | None = None):
    """The randomly initialised DyGIE model exactly as `radgraph.RadGraph` builds it (no weights loaded)."""
    _install_compat()
    from radgraph.allennlp.data import Vocabulary
    from radgraph.allennlp.modules import text_field_embedders, token_embedders
    from radgraph.dygie.models import dygie

    config = _pin_encoder(config or json.loads((radgraph_dir / "config.json").read_text()), encoder_dir)
    vocab_params = config.get("vocabulary", {})
    vocab = Vocabulary.from_files(str(radgraph_dir / "vocabulary"), vocab_params.get("padding_token"), vocab_params.get("oov_token"))
    bert = config["model"]["embedder"]["token_embedders"]["bert"]
    embedder = text_field_embedders.BasicTextFieldEmbedder({
        "bert": token_embedders.PretrainedTransformerMismatchedEmbedder(model_name=bert["model_name"], max_length=bert.get("max_length"))
    })
    model_args = {k: v for k, v in config["model"].items() if k not in ("type", "embedder", "initializer", "module_initializer")}
    return dygie.DyGIE(vocab=vocab, embedder=embedder, **model_args)


class RadGraphModel:
    """Loaded DyGIE model + reader; `annotate` runs many reports per forward pass."""

    def __init__(self, radgraph_dir: Path, encoder_dir: Path, device: str = "cpu", dtype: torch.dtype = torch.float32,
                 model_type: str = "radgraph-xl", max_words: int = DEFAULT_MAX_WORDS):
        _install_compat()
        from radgraph.allennlp.data import token_indexers
        from radgraph.dygie.data.dataset_readers.dygie import DyGIEReader

        config = _pin_encoder(json.loads((radgraph_dir / "config.json").read_text()), encoder_dir)
        reader_config = config["dataset_reader"]
        bert = reader_config["token_indexers"]["bert"]
        self.reader = DyGIEReader(
            max_span_width=reader_config["max_span_width"],
            token_indexers={"bert": token_indexers.PretrainedTransformerMismatchedIndexer(model_name=bert["model_name"], max_length=bert.get("max_length"))},
        )
        model = build_dygie(radgraph_dir, encoder_dir, config)
        state = torch.load(radgraph_dir / "weights.th", map_location="cpu", weights_only=True)
        model.load_state_dict(state, strict=True)
        self.model = model.eval().to(device=device, dtype=dtype)
        self.device = torch.device(device)
        self.model_type = model_type
        self.max_words = max_words

    def words(self, text: str) -> list[str]:
        """radgraph's own preprocessing (wordpunct tokenisation + fixes), cut to max_words."""
        from radgraph.utils import preprocess_reports

        return preprocess_reports([text], self.model_type)[0]["sentences"][0][: self.max_words]

    @torch.inference_mode()
    def annotate(self, texts: Sequence[str], batch_size: int = 32) -> list[Graph]:
        """Graphs for texts (empty text -> no entities); batches of similar length, one document each."""
        from radgraph.allennlp.data.batch import Batch
        from radgraph.utils import batch_to_device

        tokenized = [self.words(t) if t.strip() else [] for t in texts]
        graphs: list[Graph] = [EMPTY_GRAPH] * len(texts)
        words = [i for i, w in enumerate(tokenized) if w]
        for batch in length_batches([len(tokenized[i]) for i in words], batch_size):
            chunk = [words[b] for b in batch]
            with warnings.catch_warnings():  # the reader warns about one-word reports; the model handles them
                warnings.simplefilter("ignore", UserWarning)
                instance = self.reader.text_to_instance({"doc_key": "batch", "dataset": self.model_type,
                                                         "sentences": [tokenized[i] for i in chunk]})
            batch = Batch([instance])
            batch.index_instances(self.model.vocab)
            tensors = batch_to_device(batch.as_tensor_dict(), self.device)
            doc = self.model.make_output_human_readable(self.model(**tensors))
            for index, sentence in zip(chunk, doc.sentences):
                graphs[index] = _sentence_graph(sentence)
        return graphs


def _sentence_graph(sentence) -> Graph:
    """radgraph's `get_entity` on one sentence: relation targets resolved to the first entity with that span."""
    ner = [(n.span.start_sent, n.span.end_sent, n.label) for n in (sentence.predicted_ner or [])]
    spans = [(s, e) for s, e, _ in ner]
    relations = [((r.pair[0].start_sent, r.pair[0].end_sent), (r.pair[1].start_sent, r.pair[1].end_sent), r.label)
                 for r in (sentence.predicted_relations or [])]
    entities = []
    for start, end, label in ner:
        links = tuple((rel_label, spans.index(obj)) for subj, obj, rel_label in relations
                      if subj == (start, end) and obj in spans)
        entities.append(GraphEntity(" ".join(sentence.text[start:end + 1]), label, start, end, links))
    return Graph(" ".join(sentence.text), tuple(entities))


class RadGraphScorer(AnnotatingScorer[Graph]):
    """RadGraph-XL F1; headline = partial F1 (what EditGRPO and the papers report)."""

    name = "radgraph_partial_f1"
    headline = "partial_f1"

    def __init__(self, radgraph_dir: Path, encoder_dir: Path, device: str = "cpu", dtype: torch.dtype = torch.float32,
                 batch_size: int = 32, cache_size: int = 4096, max_words: int = DEFAULT_MAX_WORDS):
        super().__init__(cache_size=cache_size)
        self._args = (Path(radgraph_dir), Path(encoder_dir), str(device), dtype, max_words)
        self.batch_size = batch_size

    @property
    def model(self) -> RadGraphModel:
        return _load_radgraph(*self._args)

    def annotate(self, texts: list[str]) -> list[Graph]:
        return self.model.annotate(texts, self.batch_size)

    def compare(self, hyp: Graph, ref: Graph) -> dict[str, float]:
        return graph_scores(hyp, ref)


@lru_cache(maxsize=4)
def _load_radgraph(radgraph_dir: Path, encoder_dir: Path, device: str, dtype: torch.dtype, max_words: int) -> RadGraphModel:
    """One load per process and configuration."""
    return RadGraphModel(radgraph_dir, encoder_dir, device, dtype, max_words=max_words)
