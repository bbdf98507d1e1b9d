"""The entity-analyzer backends, by name: the one factory the trainer, the rewards and the CLI use.

Backends are imported only when built, so naming them costs nothing.
"""
from __future__ import annotations

from rewards.entities.types import EntityAnalyzer

ANALYZER_BACKENDS: tuple[str, ...] = ("rate", "lexicon")  # the default first


def build_analyzer(backend: str, **options) -> EntityAnalyzer:
    """The one factory for entity analyzers (trainer, rewards, CLI).

    ``lexicon``: offline curated lexicon + hashed character n-gram embeddings (options: ``dim``).
    ``rate``: RaTE-NER token classifier + BioLORD-style embedder from local dirs (options:
    ``ner_dir``, ``embedder_dir``, ``device``, ``dtype``, ``batch_size``, ``pooling``, ...).
    """
    if backend == "lexicon":
        from rewards.entities.lexicon import LexiconAnalyzer

        return LexiconAnalyzer(**options)
    if backend == "rate":
        from rewards.entities.rate_ner import RateAnalyzer

        return RateAnalyzer(**options)
    raise ValueError(f"unknown analyzer backend {backend!r}; expected one of {ANALYZER_BACKENDS}")
