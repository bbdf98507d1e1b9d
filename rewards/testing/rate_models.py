"""Random-weight RaTE-NER (DeBERTa-v2/v3 token classifier) and BioLORD (MPNet) dirs, for tests and benchmarks.

No weights can be downloaded here. These dirs have the real layout (``config.json``,
``model.safetensors``, ``tokenizer.json``) and architecture, so the `rate` analyzer's real
loading, batching and decoding code runs on them; only the predictions are meaningless.
``size="tiny"`` is for tests (seconds), ``"base"`` has DeBERTa-v3-base / MPNet-base shapes
(vocab, hidden 768, 12 layers) for throughput numbers. Tokenizers are trained on the given
corpus with `tokenizers` (transformers 5 ignores ``vocab_file=``) and saved via
``save_pretrained``; the configs keep the real vocabulary sizes at ``base``.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

from rewards.entities.types import ENTITY_TYPES

RATE_LABELS: tuple[str, ...] = ("O", *(f"{p}-{t}" for t in ENTITY_TYPES for p in "BI"))
NER_DIR_NAME = "RaTE-NER-Deberta"
EMBEDDER_DIR_NAME = "BioLORD-2023-C"


@dataclass(frozen=True)
class EncoderSize:
    hidden: int
    layers: int
    heads: int
    intermediate: int
    ner_vocab: int  # config vocab size of the DeBERTa model (>= trained tokenizer size)
    embed_vocab: int
    tokenizer_vocab: int  # how many tokens the trained tokenizers aim for
    # MPNet's initializer_range: at hidden 32 the default 0.02 gives every phrase nearly the same [CLS]
    # vector (cosines 0.99995+), so best matches are decided below float32 GEMM rounding and change with
    # the batch; 0.2 spreads them (cosines 0.35-0.93)
    embed_init_range: float = 0.02


SIZES: dict[str, EncoderSize] = {
    "tiny": EncoderSize(hidden=32, layers=2, heads=2, intermediate=64, ner_vocab=0, embed_vocab=0, tokenizer_vocab=400,
                        embed_init_range=0.2),
    "base": EncoderSize(hidden=768, layers=12, heads=12, intermediate=3072, ner_vocab=128100, embed_vocab=30527,
                        tokenizer_vocab=8000),
}


def build_rate_models(models_dir: str | Path, corpus: Iterable[str], size: str = "tiny", seed: int = 0) -> tuple[Path, Path]:
    """Write ``<models_dir>/RaTE-NER-Deberta`` and ``<models_dir>/BioLORD-2023-C``; returns both paths."""
    if size not in SIZES:
        raise ValueError(f"size must be one of {tuple(SIZES)}, got {size!r}")
    texts = [t for t in corpus if t and t.strip()]
    if not texts:
        raise ValueError("build_rate_models needs a non-empty corpus to train its tokenizers")
    root = Path(models_dir)
    return (build_ner_dir(root / NER_DIR_NAME, texts, SIZES[size], seed),
            build_embedder_dir(root / EMBEDDER_DIR_NAME, texts, SIZES[size], seed))


def build_ner_dir(out_dir: Path, corpus: Sequence[str], size: EncoderSize, seed: int = 0) -> Path:
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import DebertaV2Config, DebertaV2ForTokenClassification, PreTrainedTokenizerFast

    specials = ["[PAD]", "[CLS]", "[SEP]", "[UNK]", "[MASK]"]
    tokenizer = Tokenizer(models.Unigram())
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace()  # sentencepiece-style word starts, like DeBERTa-v3
    tokenizer.decoder = decoders.Metaspace()
    tokenizer.train_from_iterator(corpus, trainers.UnigramTrainer(
        vocab_size=size.tokenizer_vocab, special_tokens=specials, unk_token="[UNK]"))
    cls_id, sep_id = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B [SEP]", special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)])
    PreTrainedTokenizerFast(tokenizer_object=tokenizer, pad_token="[PAD]", cls_token="[CLS]", sep_token="[SEP]",
                            unk_token="[UNK]", mask_token="[MASK]").save_pretrained(out_dir)
    config = DebertaV2Config(  # DeBERTa-v3 settings
        vocab_size=max(size.ner_vocab, tokenizer.get_vocab_size()), hidden_size=size.hidden,
        num_hidden_layers=size.layers, num_attention_heads=size.heads, intermediate_size=size.intermediate,
        max_position_embeddings=512, relative_attention=True, position_buckets=256, norm_rel_ebd="layer_norm",
        share_att_key=True, pos_att_type=["p2c", "c2p"], max_relative_positions=-1, position_biased_input=False,
        pad_token_id=tokenizer.token_to_id("[PAD]"), type_vocab_size=0,
        id2label=dict(enumerate(RATE_LABELS)), label2id={label: i for i, label in enumerate(RATE_LABELS)},
    )
    torch.manual_seed(seed)
    DebertaV2ForTokenClassification(config).eval().save_pretrained(out_dir)
    return out_dir


def build_embedder_dir(out_dir: Path, corpus: Sequence[str], size: EncoderSize, seed: int = 0) -> Path:
    import torch
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import MPNetConfig, MPNetModel, PreTrainedTokenizerFast

    specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    tokenizer = Tokenizer(models.WordPiece(unk_token="<unk>"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.decoder = decoders.WordPiece()
    tokenizer.train_from_iterator(corpus, trainers.WordPieceTrainer(vocab_size=size.tokenizer_vocab,
                                                                    special_tokens=specials))
    bos, eos = tokenizer.token_to_id("<s>"), tokenizer.token_to_id("</s>")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>", special_tokens=[("<s>", bos), ("</s>", eos)])
    PreTrainedTokenizerFast(tokenizer_object=tokenizer, bos_token="<s>", eos_token="</s>", cls_token="<s>",
                            sep_token="</s>", pad_token="<pad>", unk_token="<unk>",
                            mask_token="<mask>").save_pretrained(out_dir)
    config = MPNetConfig(vocab_size=max(size.embed_vocab, tokenizer.get_vocab_size()), hidden_size=size.hidden,
                         num_hidden_layers=size.layers, num_attention_heads=size.heads,
                         intermediate_size=size.intermediate, pad_token_id=tokenizer.token_to_id("<pad>"),
                         initializer_range=size.embed_init_range)
    torch.manual_seed(seed)
    MPNetModel(config).eval().save_pretrained(out_dir)
    return out_dir
