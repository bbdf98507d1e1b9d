"""A tiny random Qwen2.5-VL checkpoint for tests and the CPU demo (no downloads).

Same architecture and file layout as Qwen2.5-VL-3B-Instruct, so `swift sft/rlhf/infer --model DIR
--template qwen2_5_vl_cxr` load it unchanged, but tiny (~0.6 M parameters):

- model: `Qwen2_5_VLConfig`, text hidden 64 / 2 layers / 4 heads (2 kv), vision depth 2 /
  hidden 32 / out_hidden 64, untied embeddings (tied ones make a random model repeat its last
  token);
- tokenizer: a byte-level BPE trained here on radiology text (IU-XRay reports + `corpus`) with
  Qwen2's normaliser, pre-tokenizer and decoder, and Qwen's 22 special tokens right after the
  BPE sub-words. The vocabulary is therefore ~4,100 rows instead of Qwen's 151,936: the output
  layer, its log-softmax and the sampler are ~37x smaller, which is most of a CPU RL step. The
  special ids are not Qwen's (`<|image_pad|>` is not 151655), so the config names them
  (`image_token_id`, ...) and the CXR template reads them from the tokenizer
  (`templates.qwen_cxr`); swift's stock `qwen2_5_vl` template hard-codes Qwen's ids and
  does not fit this checkpoint;
- Qwen2.5-VL chat template and `Qwen2VLImageProcessor` (patch 14, merge 2).

The output layer is shaped (`shape_output_layer`) so that the random model samples real
sub-words (radiology word salad) and sometimes stops, instead of special ids: that gives the
entity analyzers and edits something to work on in end-to-end tests.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable

from datasets_registry.iu_xray import read_report_rows

QWEN_SPECIAL_TOKENS: tuple[str, ...] = (
    "<|endoftext|>",  # 151643 in Qwen; here right after the BPE sub-words
    "<|im_start|>",
    "<|im_end|>",  # 151645
    "<|object_ref_start|>",
    "<|object_ref_end|>",
    "<|box_start|>",
    "<|box_end|>",
    "<|quad_start|>",
    "<|quad_end|>",
    "<|vision_start|>",  # 151652
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",  # 151655
    "<|video_pad|>",
    "<tool_call>",
    "</tool_call>",
    "<|fim_prefix|>",
    "<|fim_middle|>",
    "<|fim_suffix|>",
    "<|fim_pad|>",
    "<|repo_name|>",
    "<|file_sep|>",  # 151664
)
BPE_VOCAB_SIZE = 4096  # upper bound; a small corpus may stop the trainer earlier
BIAS_VALUE = 0.1  # coordinate 0 of every input embedding (see shape_output_layer)
SPECIAL_BIAS = -5.0  # output bias of special ids other than <|im_end|>
BPE_OUTPUT_STD = 0.3  # output weights of BPE tokens: logits of std ~2 over the sub-words
IM_END_BIAS = 1.8  # output bias of <|im_end|>: sampling stops now and then, greedy decoding does not stop at once
SEED = 0
MROPE_SECTION = [2, 3, 3]  # temporal/height/width rotary pairs: sums to head_dim / 2 = (64 / 4) / 2

# Qwen2.5-VL-Instruct's chat template (HF chat_template.json), used by transformers' apply_chat_template.
CHAT_TEMPLATE = (
    "{% set image_count = namespace(value=0) %}{% set video_count = namespace(value=0) %}"
    "{% for message in messages %}{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}<|im_end|>\n"
    "{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
    "{% set image_count.value = image_count.value + 1 %}"
    "{% if add_vision_id %}Picture {{ image_count.value }}: {% endif %}"
    "<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'video' or 'video' in content %}"
    "{% set video_count.value = video_count.value + 1 %}"
    "{% if add_vision_id %}Video {{ video_count.value }}: {% endif %}"
    "<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}{% endfor %}<|im_end|>\n"
    "{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def radiology_corpus(extra: Iterable[str] | None = None) -> list[str]:
    """The bundled IU-XRay findings/impressions/indications plus `extra`."""
    texts = [row[key] for row in read_report_rows() for key in ("findings", "impression", "indication") if row[key].strip()]
    texts.extend(t for t in (extra or ()) if t and t.strip())
    return texts


def train_tokenizer(texts: list[str]):
    """Qwen2Tokenizer over a locally trained byte-level BPE; (tokenizer, number of BPE sub-words).

    The special tokens follow the sub-words in Qwen's order, so their ids are `n_bpe + k`."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import Qwen2Tokenizer

    template = Qwen2Tokenizer()  # carries Qwen2's normaliser / pre-tokenizer / decoder
    bpe = Tokenizer(models.BPE())
    bpe.normalizer = template.backend_tokenizer.normalizer
    bpe.pre_tokenizer = template.backend_tokenizer.pre_tokenizer

    trainer = trainers.BpeTrainer(
        vocab_size=BPE_VOCAB_SIZE,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(texts, trainer=trainer)
    model_state = json.loads(bpe.to_str())["model"]
    vocab: dict[str, int] = dict(model_state["vocab"])
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in model_state["merges"]]
    tokenizer = Qwen2Tokenizer(vocab=vocab, merges=merges, model_max_length=32768)  # adds <|endoftext|>
    tokenizer.add_tokens(list(QWEN_SPECIAL_TOKENS[1:]), special_tokens=True)
    tokenizer.eos_token = "<|im_end|>"  # as Qwen2.5-VL-Instruct
    tokenizer.chat_template = CHAT_TEMPLATE
    n_bpe = len(vocab)
    for offset, token in enumerate(QWEN_SPECIAL_TOKENS):
        actual = tokenizer.convert_tokens_to_ids(token)
        if actual != n_bpe + offset:
            raise RuntimeError(f"{token} got id {actual}, expected {n_bpe + offset}")
    return tokenizer, n_bpe


def tiny_config(tokenizer):
    """The tiny architecture over `tokenizer`'s vocabulary, its special ids named in the config."""
    from transformers import Qwen2_5_VLConfig

    ids = {name: tokenizer.convert_tokens_to_ids(token) for name, token in (
        ("image_token_id", "<|image_pad|>"), ("video_token_id", "<|video_pad|>"),
        ("vision_start_token_id", "<|vision_start|>"), ("vision_end_token_id", "<|vision_end|>"))}
    return Qwen2_5_VLConfig(
        text_config={
            "vocab_size": len(tokenizer),
            "hidden_size": 64,
            "intermediate_size": 128,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "max_position_embeddings": 32768,
            "rope_parameters": {"rope_type": "default", "rope_theta": 1000000.0, "mrope_section": MROPE_SECTION},
            "tie_word_embeddings": False,
            "bos_token_id": tokenizer.convert_tokens_to_ids("<|endoftext|>"),
            "eos_token_id": tokenizer.convert_tokens_to_ids("<|im_end|>"),
            "pad_token_id": tokenizer.convert_tokens_to_ids("<|endoftext|>"),
        },
        vision_config={
            "depth": 2,
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_heads": 2,
            "out_hidden_size": 64,
            "patch_size": 14,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
            "window_size": 112,
            "fullatt_block_indexes": [1],
        },
        tie_word_embeddings=False,
        dtype="float32",
        **ids,
    )


def shape_output_layer(model, n_bpe: int, im_end_id: int) -> None:
    """Make random sampling emit real sub-words and sometimes stop, instead of special ids.

    Every input embedding gets a constant `BIAS_VALUE` in dimension 0, so the final hidden
    state always has a large positive coordinate 0 (an implicit bias unit); output rows then
    set each token's bias there: special ids strongly negative, BPE tokens 0 plus random
    weights on the other dimensions (a random bigram-like chain), `<|im_end|>` a stop rate.
    """
    import torch

    embeddings = model.get_input_embeddings().weight
    output = model.get_output_embeddings().weight
    with torch.no_grad():
        embeddings[:, 0] = BIAS_VALUE
        output.zero_()
        output[:, 0] = SPECIAL_BIAS
        output[:n_bpe, 1:].normal_(0.0, BPE_OUTPUT_STD)
        output[:n_bpe, 0] = 0.0
        output[im_end_id, 0] = IM_END_BIAS


def build_tiny_model(out_dir: str | Path, corpus: Iterable[str] | None = None) -> Path:
    """Write the checkpoint (weights, config, tokenizer, processor, generation config) to `out_dir`."""
    import torch
    from transformers import (
        GenerationConfig,
        Qwen2_5_VLForConditionalGeneration,
        Qwen2_5_VLProcessor,
        Qwen2VLImageProcessor,
        Qwen2VLVideoProcessor,
    )

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer, n_bpe = train_tokenizer(radiology_corpus(corpus))

    torch.manual_seed(SEED)
    model = Qwen2_5_VLForConditionalGeneration(tiny_config(tokenizer))
    im_end, end_of_text = tokenizer.convert_tokens_to_ids("<|im_end|>"), tokenizer.convert_tokens_to_ids("<|endoftext|>")
    shape_output_layer(model, n_bpe, im_end)
    model.generation_config = GenerationConfig(
        bos_token_id=end_of_text,
        eos_token_id=[im_end, end_of_text],
        pad_token_id=end_of_text,
    )
    model.save_pretrained(out)

    image_processor = Qwen2VLImageProcessor(patch_size=14, merge_size=2, temporal_patch_size=2)
    processor = Qwen2_5_VLProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        video_processor=Qwen2VLVideoProcessor(patch_size=14, merge_size=2, temporal_patch_size=2),
        chat_template=CHAT_TEMPLATE,
    )
    processor.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out
