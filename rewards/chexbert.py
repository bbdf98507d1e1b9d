"""CheXbert labels and F1: our own thin, batched labeler loading the original `chexbert.pth`.

`f1chexbert` (the usual package) breaks on transformers 5, scikit-learn >= 1.8 and
huggingface_hub >= 1.0, has no path argument, labels one report per forward pass, and loads
with `strict=False` (a mis-keyed file silently becomes a random model). This module keeps its
architecture and semantics (BERT + 13 x Linear(768, 4) + Linear(768, 2) on [CLS]; uncertain ->
positive; the same tokenisation and 512-token cut) and rejects any checkpoint whose keys do not
match exactly. Parity with the package: the `chexbert` entry of tests/golden/parity.json (made by tests/golden/make_goldens.py).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import nn

from rewards.batching import length_batches

from rewards.base import AnnotatingScorer, check_pairs, prf
from rewards.paths import is_hub_id

CONDITIONS: tuple[str, ...] = (
    "Enlarged Cardiomediastinum", "Cardiomegaly", "Lung Opacity", "Lung Lesion", "Edema",
    "Consolidation", "Pneumonia", "Atelectasis", "Pneumothorax", "Pleural Effusion", "Pleural Other",
    "Fracture", "Support Devices", "No Finding",
)
CONDITIONS_5: tuple[str, ...] = ("Cardiomegaly", "Edema", "Consolidation", "Atelectasis", "Pleural Effusion")
INDEX_5: tuple[int, ...] = tuple(CONDITIONS.index(c) for c in CONDITIONS_5)
# head classes: 0 blank, 1 positive, 2 negative, 3 uncertain ("No Finding": 0 blank, 1 positive)
POSITIVE_CLASSES = (1, 3)
MAX_TOKENS = 512
# Buffers some transformers versions saved with the weights; harmless to drop, nothing else is.
_IGNORABLE_KEYS = frozenset({"bert.embeddings.position_ids"})


class CheXbertCheckpointError(ValueError):
    """The checkpoint's keys or shapes do not match CheXbert (f1chexbert would silently go random)."""


class CheXbertModel(nn.Module):
    """BERT encoder + 14 linear heads on the [CLS] vector; attribute names match chexbert.pth."""

    def __init__(self, config):
        super().__init__()
        from transformers import BertModel

        self.bert = BertModel(config, add_pooling_layer=True)
        hidden = config.hidden_size
        self.linear_heads = nn.ModuleList([nn.Linear(hidden, 4) for _ in range(13)] + [nn.Linear(hidden, 2)])

    @classmethod
    def from_config_dir(cls, bert_dir: Path) -> "CheXbertModel":
        from transformers import BertConfig

        return cls(BertConfig.from_pretrained(str(bert_dir), local_files_only=not is_hub_id(bert_dir)))

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> list[torch.Tensor]:
        cls = self.bert(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state[:, 0, :]
        return [head(cls) for head in self.linear_heads]


def load_state_dict_strict(model: CheXbertModel, checkpoint: Path) -> None:
    """Load `model_state_dict` (keys may carry DataParallel's `module.`); any key mismatch is an error."""
    try:
        raw = torch.load(checkpoint, map_location="cpu", weights_only=True)
    except Exception as err:  # not a torch file, or pickled objects we refuse to execute
        raise CheXbertCheckpointError(f"{checkpoint}: cannot read as a torch checkpoint ({err})") from err
    if not isinstance(raw, dict) or "model_state_dict" not in raw:
        raise CheXbertCheckpointError(f"{checkpoint}: expected a dict with 'model_state_dict' (the format of chexbert.pth)")
    state = {k.removeprefix("module."): v for k, v in raw["model_state_dict"].items()}
    state = {k: v for k, v in state.items() if k not in _IGNORABLE_KEYS}
    expected = set(model.state_dict())
    missing, unexpected = sorted(expected - set(state)), sorted(set(state) - expected)
    if missing or unexpected:
        raise CheXbertCheckpointError(
            f"{checkpoint} does not match CheXbert (BERT + 14 heads): {len(missing)} missing keys {missing[:5]}, "
            f"{len(unexpected)} unexpected keys {unexpected[:5]}; is it the StanfordAIMI/RRG_scorers chexbert.pth?"
        )
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as err:
        raise CheXbertCheckpointError(f"{checkpoint}: shape mismatch with the BERT config ({err})") from err


class CheXbertLabeler:
    """Batched labeler: texts -> 14 head classes each (0 blank, 1 pos, 2 neg, 3 uncertain)."""

    def __init__(self, checkpoint: Path, bert_dir: Path, device: str = "cpu", dtype: torch.dtype = torch.float32):
        from transformers import AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(str(bert_dir), local_files_only=not is_hub_id(bert_dir))
        model = CheXbertModel.from_config_dir(bert_dir)
        load_state_dict_strict(model, checkpoint)
        self.model = model.eval().to(device=device, dtype=dtype)
        self.device = torch.device(device)

    def encode(self, text: str) -> list[int]:
        """f1chexbert's tokenisation: [CLS] wordpieces [SEP], cut to 511 + [SEP]."""
        ids = self.tokenizer(text, add_special_tokens=True, truncation=False)["input_ids"]
        return ids[: MAX_TOKENS - 1] + [self.tokenizer.sep_token_id] if len(ids) > MAX_TOKENS else ids

    @torch.inference_mode()
    def classes(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        encoded = [self.encode(t) for t in texts]
        out = np.zeros((len(texts), len(CONDITIONS)), dtype=np.int64)
        pad = self.tokenizer.pad_token_id or 0
        for chunk in length_batches([len(ids) for ids in encoded], batch_size):
            width = max(len(encoded[i]) for i in chunk)
            ids = torch.full((len(chunk), width), pad, dtype=torch.long)
            mask = torch.zeros((len(chunk), width), dtype=torch.long)
            for row, i in enumerate(chunk):
                ids[row, : len(encoded[i])] = torch.tensor(encoded[i])
                mask[row, : len(encoded[i])] = 1
            logits = self.model(ids.to(self.device), mask.to(self.device))
            out[chunk] = torch.stack([head.argmax(dim=-1) for head in logits], dim=1).cpu().numpy()
        return out


def binary_labels(classes: np.ndarray) -> np.ndarray:
    """Positive and uncertain -> 1; blank and negative -> 0 (the reward's and the paper's convention)."""
    return np.isin(classes, POSITIVE_CLASSES).astype(np.int64)


def pair_f1(hyp: np.ndarray, ref: np.ndarray) -> tuple[float, float, float]:
    """Micro P/R/F1 over the binary labels of one pair (0 if neither side has a positive)."""
    tp = int((hyp & ref).sum())
    return prf(tp, int(hyp.sum()), int(ref.sum()))


def corpus_f1(hyps: np.ndarray, refs: np.ndarray) -> dict[str, float]:
    """Corpus micro/macro F1 over 14 and 5 labels, as sklearn's classification_report (0 where undefined)."""
    out: dict[str, float] = {}
    for suffix, columns in (("14", list(range(len(CONDITIONS)))), ("5", list(INDEX_5))):
        h, r = hyps[:, columns], refs[:, columns]
        tp, fp, fn = (h & r).sum(axis=0), (h & (1 - r)).sum(axis=0), ((1 - h) & r).sum(axis=0)
        per_label = [2 * t / (2 * t + p + n) if (2 * t + p + n) else 0.0 for t, p, n in zip(tp, fp, fn)]
        out[f"chexbert_micro_f1_{suffix}"] = prf(int(tp.sum()), int(tp.sum() + fp.sum()), int(tp.sum() + fn.sum()))[2]
        out[f"chexbert_macro_f1_{suffix}"] = float(np.mean(per_label))
    return out


@dataclass(frozen=True)
class Labels:
    """One report's CheXbert result: 14 raw head classes and the binary (uncertain -> positive) vector."""

    classes: np.ndarray
    binary: np.ndarray


class LabelScorer(AnnotatingScorer[Labels]):
    """Per-pair micro-F1-14 over a labeler's binary labels, plus corpus micro/macro-F1-14/5."""

    name = "chexbert_micro_f1_14"
    headline = "f1"

    def label(self, texts: list[str]) -> np.ndarray:
        raise NotImplementedError

    def annotate(self, texts: list[str]) -> list[Labels]:
        classes = self.label(texts)
        return [Labels(c, binary_labels(c)) for c in classes]

    def labels(self, texts: Sequence[str]) -> np.ndarray:
        """(n, 14) head classes (0 blank, 1 pos, 2 neg, 3 uncertain), cached like references."""
        if not texts:
            return np.zeros((0, len(CONDITIONS)), dtype=np.int64)
        return np.stack([a.classes for a in self.annotations(texts, texts)[1]])

    def compare(self, hyp: Labels, ref: Labels) -> dict[str, float]:
        p, r, f = pair_f1(hyp.binary, ref.binary)
        return {"precision": p, "recall": r, "f1": f}

    def corpus(self, hyps: Sequence[str], refs: Sequence[str]) -> dict[str, float]:
        check_pairs(hyps, refs)
        if not hyps:
            return {f"chexbert_{kind}_f1_{n}": 0.0 for kind in ("micro", "macro") for n in ("14", "5")}
        hyp_ann, ref_ann = self.annotations(hyps, refs)
        return corpus_f1(np.stack([a.binary for a in hyp_ann]), np.stack([a.binary for a in ref_ann]))


class CheXbertScorer(LabelScorer):
    def __init__(self, checkpoint: Path, bert_dir: Path, device: str = "cpu", dtype: torch.dtype = torch.float32,
                 batch_size: int = 64, cache_size: int = 4096):
        super().__init__(cache_size=cache_size)
        self._args = (Path(checkpoint), Path(bert_dir), str(device), dtype)
        self.batch_size = batch_size

    @property
    def labeler(self) -> CheXbertLabeler:
        return _load_labeler(*self._args)

    def label(self, texts: list[str]) -> np.ndarray:
        return self.labeler.classes(texts, self.batch_size)


@lru_cache(maxsize=4)
def _load_labeler(checkpoint: Path, bert_dir: Path, device: str, dtype: torch.dtype) -> CheXbertLabeler:
    """One load per process and configuration."""
    return CheXbertLabeler(checkpoint, bert_dir, device, dtype)
