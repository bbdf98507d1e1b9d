"""Tiny random checkpoints of each policy family (Qwen2.5-VL, Qwen3-VL, Qwen3.5) for tests and the CPU demo.

Same architecture and file layout as the family's real checkpoint, so `swift sft/rlhf/infer --model
DIR --template <family>_cxr` load it unchanged (Qwen3-VL and Qwen3.5 also need `--model_type`:
swift maps their architecture to several model types), but tiny (0.6-0.7 M parameters):

- model: text hidden 64 / 2 layers / 4 heads (2 kv), vision depth 2 / hidden 32 / out_hidden 64,
  untied embeddings (tied ones make a random model repeat its last token). Qwen2.5-VL:
  `Qwen2_5_VLConfig`; Qwen3-VL: `Qwen3VLConfig` (interleaved M-RoPE, one deepstack layer);
  Qwen3.5: `Qwen3_5Config` with one linear-attention (gated delta net) and one full-attention
  layer, partial rotary, as the real model alternates them;
- tokenizer: a byte-level BPE trained here on radiology text (IU-XRay reports + `corpus`) with
  the family tokenizer's normaliser, pre-tokenizer and decoder (Qwen2's; Qwen3.5's own class),
  and Qwen's 22 special tokens right after the BPE sub-words (Qwen3 families add the four
  `<tool_response>`/`<think>` tokens after them, as their real vocabularies do). The vocabulary
  is therefore ~4,100 rows instead of 151,936 (248,320 for Qwen3.5): the output layer, its
  log-softmax and the sampler are ~37x smaller, which is most of a CPU RL step. The special ids
  are not Qwen's (`<|image_pad|>` is not 151655), so the config names them (`image_token_id`,
  ...) and the CXR templates read them from the tokenizer (`templates.qwen_cxr`); swift's stock
  templates hard-code Qwen's ids and do not fit these checkpoints;
- the family's chat template (shortened, no tools) and image processor: `Qwen2VLImageProcessor`
  with the family's grid (patch 14 or 16, merge 2, `templates.families`).

The output layer is shaped (`shape_output_layer`) so that the random model samples real
sub-words (radiology word salad) and sometimes stops, instead of special ids: that gives the
entity analyzers and edits something to work on in end-to-end tests. The Qwen2.5-VL checkpoint
is byte-for-byte what this module wrote before the other families were added.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

from datasets_registry.iu_xray import read_report_rows
from templates.families import DEFAULT_FAMILY, ModelFamily, get_family

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
# Qwen3's and Qwen3.5's vocabularies continue with these (151665-151668 in Qwen3-VL); not special tokens there
QWEN3_EXTRA_TOKENS: tuple[str, ...] = ("<tool_response>", "</tool_response>", "<think>", "</think>")
BPE_VOCAB_SIZE = 4096  # upper bound; a small corpus may stop the trainer earlier
BIAS_VALUE = 0.1  # coordinate 0 of every input embedding (see shape_output_layer)
SPECIAL_BIAS = -5.0  # output bias of special ids other than <|im_end|>
BPE_OUTPUT_STD = 0.3  # output weights of BPE tokens: logits of std ~2 over the sub-words
IM_END_BIAS = 1.8  # output bias of <|im_end|>: sampling stops now and then, greedy decoding does not stop at once
SEED = 0
MROPE_SECTION = [2, 3, 3]  # temporal/height/width rotary pairs: sums to head_dim / 2 = (64 / 4) / 2
# Qwen3 families interleave T/H/W over the rotary pairs; H and W take every third pair from 1 and 2
QWEN3_VL_MROPE_SECTION = [4, 2, 2]  # head_dim 16: 8 pairs
QWEN3_5_HEAD_DIM, QWEN3_5_MROPE_SECTION = 32, [2, 1, 1]  # partial rotary 0.25: 8 rotary dims, 4 pairs

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
_DEFAULT_SYSTEM_TURN = ("{% if loop.first and message['role'] != 'system' %}"
                        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}")
# Qwen3-VL-Instruct's format: Qwen2.5-VL's without a default system turn
QWEN3_VL_CHAT_TEMPLATE = CHAT_TEMPLATE.replace(_DEFAULT_SYSTEM_TURN, "")
# Qwen3.5 (hybrid thinking): the generation prompt opens a thinking block, or an empty one when
# enable_thinking is false (what swift's qwen3_5 template puts in the prompt: `<think>\n\n</think>\n\n`)
QWEN3_5_CHAT_TEMPLATE = QWEN3_VL_CHAT_TEMPLATE.replace(
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}",
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% if enable_thinking is defined and enable_thinking "
    "is false %}<think>\n\n</think>\n\n{% else %}<think>\n{% endif %}{% endif %}")


def radiology_corpus(extra: Iterable[str] | None = None) -> list[str]:
    """The bundled IU-XRay findings/impressions/indications plus `extra`."""
    texts = [row[key] for row in read_report_rows() for key in ("findings", "impression", "indication") if row[key].strip()]
    texts.extend(t for t in (extra or ()) if t and t.strip())
    return texts


def train_tokenizer(texts: list[str], family: str = DEFAULT_FAMILY):
    """The family's tokenizer class over a locally trained byte-level BPE; (tokenizer, number of BPE sub-words).

    The special tokens follow the sub-words in Qwen's order, so their ids are `n_bpe + k`."""
    import transformers
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tiny = tiny_architecture(family)
    tokenizer_cls = getattr(transformers, tiny.tokenizer_class)
    template = tokenizer_cls()  # carries the family's normaliser / pre-tokenizer / decoder
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
    tokenizer = tokenizer_cls(vocab=vocab, merges=merges, model_max_length=32768)  # Qwen2Tokenizer adds <|endoftext|>
    if tokenizer.convert_tokens_to_ids(QWEN_SPECIAL_TOKENS[0]) != len(vocab):  # Qwen3_5Tokenizer does not
        tokenizer.add_tokens([QWEN_SPECIAL_TOKENS[0]], special_tokens=True)
    tokenizer.add_tokens(list(QWEN_SPECIAL_TOKENS[1:]), special_tokens=True)
    if tiny.extra_tokens:
        tokenizer.add_tokens(list(tiny.extra_tokens), special_tokens=False)
    tokenizer.eos_token = get_family(family).end_token  # as the family's Instruct checkpoints
    tokenizer.chat_template = tiny.chat_template
    n_bpe = len(vocab)
    for offset, token in enumerate(QWEN_SPECIAL_TOKENS + tiny.extra_tokens):
        actual = tokenizer.convert_tokens_to_ids(token)
        if actual != n_bpe + offset:
            raise RuntimeError(f"{token} got id {actual}, expected {n_bpe + offset}")
    return tokenizer, n_bpe


def _special_ids(tokenizer) -> dict[str, int]:
    return {name: tokenizer.convert_tokens_to_ids(token) for name, token in (
        ("image_token_id", "<|image_pad|>"), ("video_token_id", "<|video_pad|>"),
        ("vision_start_token_id", "<|vision_start|>"), ("vision_end_token_id", "<|vision_end|>"))}


def _text_ids(tokenizer, family: ModelFamily) -> dict[str, int]:
    end_of_text = tokenizer.convert_tokens_to_ids("<|endoftext|>")
    return {"bos_token_id": end_of_text, "eos_token_id": tokenizer.convert_tokens_to_ids(family.end_token),
            "pad_token_id": end_of_text}


def _tiny(config_class: str, tokenizer, family: ModelFamily, text: dict, vision: dict):
    """A family's config with the sizes every tiny checkpoint shares (text hidden 64 / 2 layers / 4 heads,
    2 kv; vision depth 2 / hidden 32 / out 64 on the family's patch grid), its own `text`/`vision` fields
    on top, over `tokenizer`'s vocabulary with its special ids named."""
    import transformers

    return getattr(transformers, config_class)(
        text_config={"vocab_size": len(tokenizer), "hidden_size": 64, "intermediate_size": 128,
                     "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
                     "max_position_embeddings": 32768, "tie_word_embeddings": False,
                     **_text_ids(tokenizer, family), **text},
        vision_config={"depth": 2, "hidden_size": 32, "intermediate_size": 64, "num_heads": 2, "out_hidden_size": 64,
                       "patch_size": family.patch_size, "spatial_merge_size": family.merge_size,
                       "temporal_patch_size": 2, **vision},
        tie_word_embeddings=False,
        dtype="float32",
        **_special_ids(tokenizer),
    )


QWEN3_VISION = {"num_position_embeddings": 256}  # a 16x16 grid of learned positions, interpolated per image


def _qwen2_5_vl_config(tokenizer, family: ModelFamily):
    return _tiny("Qwen2_5_VLConfig", tokenizer, family,
                 {"rope_parameters": {"rope_type": "default", "rope_theta": 1000000.0, "mrope_section": MROPE_SECTION}},
                 {"window_size": 112, "fullatt_block_indexes": [1]})


def _qwen3_vl_config(tokenizer, family: ModelFamily):
    return _tiny("Qwen3VLConfig", tokenizer, family,
                 {"head_dim": 16, "rope_parameters": {"rope_type": "default", "rope_theta": 5000000.0,
                                                      "mrope_section": QWEN3_VL_MROPE_SECTION, "mrope_interleaved": True}},
                 {**QWEN3_VISION, "deepstack_visual_indexes": [0]})


def _qwen3_5_config(tokenizer, family: ModelFamily):
    return _tiny("Qwen3_5Config", tokenizer, family,
                 {"head_dim": QWEN3_5_HEAD_DIM, "layer_types": ["linear_attention", "full_attention"],
                  "linear_conv_kernel_dim": 4, "linear_key_head_dim": 16, "linear_value_head_dim": 16,
                  "linear_num_key_heads": 2, "linear_num_value_heads": 4,
                  "rope_parameters": {"rope_type": "default", "rope_theta": 10000000.0, "partial_rotary_factor": 0.25,
                                      "mrope_section": QWEN3_5_MROPE_SECTION, "mrope_interleaved": True}},
                 QWEN3_VISION)


@dataclass(frozen=True)
class TinyArchitecture:
    """How a family's tiny checkpoint is made: transformers classes (by name: imported when building) and extras."""

    family: str
    config: Callable  # (tokenizer, ModelFamily) -> the tiny transformers config
    model_class: str
    processor_class: str
    video_processor_class: str
    tokenizer_class: str
    chat_template: str
    extra_tokens: tuple[str, ...] = ()
    image_mean: tuple[float, float, float] | None = None  # None: the image processor's default (OpenAI CLIP)


def _architectures(*items: TinyArchitecture) -> dict[str, TinyArchitecture]:
    return {item.family: item for item in items}


TINY_ARCHITECTURES: dict[str, TinyArchitecture] = _architectures(
    TinyArchitecture("qwen2_5_vl", _qwen2_5_vl_config, "Qwen2_5_VLForConditionalGeneration", "Qwen2_5_VLProcessor",
                     "Qwen2VLVideoProcessor", "Qwen2Tokenizer", CHAT_TEMPLATE),
    TinyArchitecture("qwen3_vl", _qwen3_vl_config, "Qwen3VLForConditionalGeneration", "Qwen3VLProcessor",
                     "Qwen3VLVideoProcessor", "Qwen2Tokenizer", QWEN3_VL_CHAT_TEMPLATE, QWEN3_EXTRA_TOKENS,
                     (0.5, 0.5, 0.5)),
    TinyArchitecture("qwen3_5", _qwen3_5_config, "Qwen3_5ForConditionalGeneration", "Qwen3VLProcessor",
                     "Qwen3VLVideoProcessor", "Qwen3_5Tokenizer", QWEN3_5_CHAT_TEMPLATE, QWEN3_EXTRA_TOKENS,
                     (0.5, 0.5, 0.5)),
)


def tiny_architecture(family: str) -> TinyArchitecture:
    """The builder's entry for `family` (a family of `templates.families`); a clear error for the others."""
    get_family(family)  # unknown names: the families' own error
    try:
        return TINY_ARCHITECTURES[family]
    except KeyError:
        raise ValueError(f"no tiny checkpoint for family {family!r}; the builder has {', '.join(TINY_ARCHITECTURES)}") from None


def tiny_config(tokenizer, family: str = DEFAULT_FAMILY):
    """The tiny architecture over `tokenizer`'s vocabulary, its special ids named in the config."""
    return tiny_architecture(family).config(tokenizer, get_family(family))


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


def build_tiny_model(out_dir: str | Path, corpus: Iterable[str] | None = None, family: str = DEFAULT_FAMILY) -> Path:
    """Write the family's checkpoint (weights, config, tokenizer, processor, generation config) to `out_dir`."""
    import torch
    import transformers
    from transformers import GenerationConfig, Qwen2VLImageProcessor

    tiny = tiny_architecture(family)
    spec = get_family(family)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer, n_bpe = train_tokenizer(radiology_corpus(corpus), family)

    torch.manual_seed(SEED)
    model = getattr(transformers, tiny.model_class)(tiny_config(tokenizer, family))
    end, end_of_text = tokenizer.convert_tokens_to_ids(spec.end_token), tokenizer.convert_tokens_to_ids("<|endoftext|>")
    shape_output_layer(model, n_bpe, end)
    model.generation_config = GenerationConfig(
        bos_token_id=end_of_text,
        eos_token_id=[end, end_of_text],
        pad_token_id=end_of_text,
    )
    model.save_pretrained(out)

    grid = {"patch_size": spec.patch_size, "merge_size": spec.merge_size, "temporal_patch_size": 2}
    normalise = {} if tiny.image_mean is None else {"image_mean": list(tiny.image_mean), "image_std": list(tiny.image_mean)}
    image_processor = Qwen2VLImageProcessor(**grid, **normalise)
    processor = getattr(transformers, tiny.processor_class)(
        image_processor=image_processor,
        tokenizer=tokenizer,
        video_processor=getattr(transformers, tiny.video_processor_class)(**grid, **normalise),
        chat_template=tiny.chat_template,
    )
    processor.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out
