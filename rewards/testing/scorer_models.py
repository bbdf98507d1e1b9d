"""Random-weight checkpoints of the exact scorer architectures, in the layout users download.

No weights can be downloaded here, so tests (tiny), parity goldens (tiny) and the throughput
benchmark (full size) build CheXbert (BERT + 14 heads, ``chexbert.pth``) and RadGraph-XL
(DyGIE++ on BERT: ``config.json`` + ``vocabulary/`` + ``weights.th``) locally. Weights are
filled from a seeded generator in sorted-key order, so the same seed gives the same model
under any transformers version (the parity goldens rely on that).

transformers 5 ignores ``vocab_file=`` on ``BertTokenizer``: tokenizers are built as
``tokenizers`` objects, wrapped and round-tripped with ``save_pretrained``; ``vocab.txt`` is
written too, for slow tokenizers of older stacks (the upstream packages' venv).
"""
from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import torch

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
RADGRAPH_NER_LABELS = ("ANAT-DP", "OBS-DP", "OBS-U", "OBS-DA")
RADGRAPH_RELATION_LABELS = ("modify", "located_at", "suggestive_of")
_WORD_RE = re.compile(r"[a-z]+|[0-9]+|[^\sa-z0-9]")


@dataclass(frozen=True)
class BertSize:
    hidden: int
    layers: int
    heads: int
    intermediate: int
    vocab: int | None  # None: just the corpus words (tiny); an int pads with [unusedN]


TINY = BertSize(hidden=32, layers=2, heads=2, intermediate=64, vocab=None)
BASE = BertSize(hidden=768, layers=12, heads=12, intermediate=3072, vocab=30522)  # bert-base-uncased
SIZES = {"tiny": TINY, "base": BASE}


def _vocabulary(corpus: Iterable[str], size: BertSize, max_words: int = 3000) -> list[str]:
    counts = Counter(word for text in corpus for word in _WORD_RE.findall((text or "").lower()))
    chars = sorted({c for word in counts for c in word})
    words = [w for w, _ in counts.most_common(max_words) if len(w) > 1]
    vocab = list(SPECIAL_TOKENS) + chars + [f"##{c}" for c in chars] + words
    vocab = list(dict.fromkeys(vocab))
    if size.vocab is not None:
        vocab += [f"[unused{i}]" for i in range(size.vocab - len(vocab))]
        vocab = vocab[: size.vocab]
    return vocab


def build_bert_tokenizer(out_dir: Path, corpus: Iterable[str], size: BertSize = TINY) -> int:
    """An uncased WordPiece tokenizer over the corpus words, saved as a HF dir; returns its vocab size."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from transformers import BertTokenizer

    vocab = _vocabulary(corpus, size)
    ids = {token: i for i, token in enumerate(vocab)}
    backend = Tokenizer(models.WordPiece(vocab=ids, unk_token="[UNK]", max_input_chars_per_word=100))
    backend.normalizer = normalizers.BertNormalizer(lowercase=True, strip_accents=True, clean_text=True)
    backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    backend.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", ids["[CLS]"]), ("[SEP]", ids["[SEP]"])],
    )
    backend.decoder = decoders.WordPiece(prefix="##")
    tokenizer = BertTokenizer(tokenizer_object=backend, do_lower_case=True, unk_token="[UNK]", sep_token="[SEP]",
                              pad_token="[PAD]", cls_token="[CLS]", mask_token="[MASK]", model_max_length=512)
    out_dir.mkdir(parents=True, exist_ok=True)
    tokenizer.save_pretrained(out_dir)
    (out_dir / "vocab.txt").write_text("\n".join(vocab) + "\n")
    return len(vocab)


def bert_config(vocab_size: int, size: BertSize) -> dict:
    return {
        "architectures": ["BertModel"], "model_type": "bert", "vocab_size": vocab_size,
        "hidden_size": size.hidden, "num_hidden_layers": size.layers, "num_attention_heads": size.heads,
        "intermediate_size": size.intermediate, "hidden_act": "gelu", "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1, "max_position_embeddings": 512, "type_vocab_size": 2,
        "initializer_range": 0.02, "layer_norm_eps": 1e-12, "pad_token_id": 0,
    }


def build_bert_dir(out_dir: Path, corpus: Iterable[str], size: BertSize = TINY) -> Path:
    """Tokenizer + config of a BERT encoder (CheXbert and RadGraph carry the encoder weights in their own files)."""
    vocab_size = build_bert_tokenizer(out_dir, corpus, size)
    (out_dir / "config.json").write_text(json.dumps(bert_config(vocab_size, size), indent=1))
    return out_dir


def fill_random_(module: torch.nn.Module, seed: int, std: float = 0.3) -> torch.nn.Module:
    """Overwrite every parameter from one seeded generator in sorted-name order (library-independent)."""
    generator = torch.Generator().manual_seed(seed)
    params = dict(module.named_parameters())
    with torch.no_grad():
        for name in sorted(params):
            values = torch.randn(params[name].shape, generator=generator, dtype=torch.float32) * std
            if name.endswith("LayerNorm.weight") or name.endswith("layer_norm.weight"):
                values += 1.0
            params[name].copy_(values)
    return module


def build_chexbert(models_dir: Path, corpus: Sequence[str], size: str = "tiny", seed: int = 0) -> Path:
    """``<models_dir>/bert-base-uncased/`` + ``<models_dir>/chexbert/chexbert.pth`` (keys ``module.``-prefixed)."""
    from rewards.chexbert import CheXbertModel

    bert_dir = build_bert_dir(models_dir / "bert-base-uncased", corpus, SIZES[size])
    model = fill_random_(CheXbertModel.from_config_dir(bert_dir), seed)
    state = {f"module.{key}": value for key, value in model.state_dict().items()}
    ckpt = models_dir / "chexbert" / "chexbert.pth"
    ckpt.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"model_state_dict": state, "epoch": 0}, ckpt)
    return ckpt


def radgraph_config(encoder: str, feature_size: int = 20, hidden_dims: int = 150) -> dict:
    """The DyGIE++ configuration of the RadGraph archives (NER + relation; coref/events off)."""
    bert = {"type": "pretrained_transformer_mismatched", "model_name": encoder, "max_length": 512}
    return {
        "dataset_reader": {"type": "dygie", "max_span_width": 8, "token_indexers": {"bert": dict(bert)}},
        "model": {
            "type": "dygie",
            "embedder": {"token_embedders": {"bert": dict(bert)}},
            "feature_size": feature_size,
            "max_span_width": 8,
            "target_task": "relation",
            "feedforward_params": {"num_layers": 2, "hidden_dims": hidden_dims, "dropout": 0.4},
            "loss_weights": {"ner": 1.0, "relation": 1.0, "coref": 0.0, "events": 0.0},
            "initializer": {"regexes": [["_span_width_embedding.weight", {"type": "xavier_normal"}]]},
            "module_initializer": {"regexes": [[".*weight", {"type": "xavier_normal"}], [".*weight_matrix", {"type": "xavier_normal"}]]},
            "modules": {
                "coref": {"spans_per_word": 0.3, "max_antecedents": 100, "coref_prop": 0},
                "ner": {},
                "relation": {"spans_per_word": 0.5},
                "events": {"trigger_spans_per_word": 0.3, "argument_spans_per_word": 0.8,
                           "loss_weights": {"trigger": 1.0, "arguments": 0.5}},
            },
        },
    }


def build_radgraph(models_dir: Path, corpus: Sequence[str], size: str = "tiny", seed: int = 0,
                   model_type: str = "radgraph-xl", encoder_name: str = "bert-base-uncased") -> Path:
    """``<models_dir>/radgraph-xl/`` (config, vocabulary, weights.th) + its encoder dir ``<models_dir>/<encoder_name>/``."""
    from rewards.radgraph import build_dygie

    encoder_dir = models_dir / encoder_name
    if not (encoder_dir / "config.json").is_file():
        build_bert_dir(encoder_dir, corpus, SIZES[size])
    out = models_dir / model_type
    (out / "vocabulary").mkdir(parents=True, exist_ok=True)
    hidden = 150 if size == "base" else 16
    (out / "config.json").write_text(json.dumps(radgraph_config(encoder_name, 20 if size == "base" else 8, hidden), indent=1))
    _write_allennlp_vocabulary(out / "vocabulary", model_type)
    model = build_dygie(out, encoder_dir)
    fill_random_(model, seed)
    torch.save(model.state_dict(), out / "weights.th")
    _calibrate_heads(out, encoder_dir, list(corpus)[:48])
    return out


def _calibrate_heads(radgraph_dir: Path, encoder_dir: Path, texts: list[str]) -> None:
    """Shift the NER and relation heads' biases so ~6 % of spans and ~5 % of span pairs get a label.

    A random head tags nearly every span (or none), and random relations for nearly every pair
    make decoding, not the model, the cost; trained RadGraph models are sparse like this.
    """
    from rewards.radgraph import RadGraphModel

    annotator = RadGraphModel(radgraph_dir, encoder_dir)
    modules = dict(annotator.model.named_modules())
    ner_head = next(m for n, m in modules.items() if re.fullmatch(r"_ner\._ner_scorers\.[^.]+\.1\._module", n))
    relation = annotator.model._relation
    relation_head = next(iter(relation._relation_scorers.values()))
    ner_scores: list[torch.Tensor] = []
    relation_scores: list[torch.Tensor] = []
    hook = ner_head.register_forward_hook(lambda _m, _i, out: ner_scores.append(out.detach().max(dim=-1).values.flatten()))
    compute = relation._compute_relation_scores

    def capture(*args):  # final pair scores include both spans' mention scores; column 0 is the null label
        out = compute(*args)
        relation_scores.append(out[..., 1:].detach().max(dim=-1).values.flatten())
        return out

    relation._compute_relation_scores = capture
    annotator.annotate(texts)
    hook.remove()
    del relation._compute_relation_scores
    with torch.no_grad():
        ner_head.bias.sub_(torch.quantile(torch.cat(ner_scores).float(), 1.0 - 0.06))
        relation_head.bias.sub_(torch.quantile(torch.cat(relation_scores).float(), 1.0 - 0.05))
    torch.save(annotator.model.state_dict(), radgraph_dir / "weights.th")


def _write_allennlp_vocabulary(vocab_dir: Path, dataset: str) -> None:
    """AllenNLP's on-disk vocabulary: label namespaces are non-padded; NER has the null label first."""
    (vocab_dir / "non_padded_namespaces.txt").write_text("*tags\n*labels\n")
    (vocab_dir / f"{dataset}__ner_labels.txt").write_text("\n".join(("",) + RADGRAPH_NER_LABELS) + "\n")
    (vocab_dir / f"{dataset}__relation_labels.txt").write_text("\n".join(RADGRAPH_RELATION_LABELS) + "\n")
