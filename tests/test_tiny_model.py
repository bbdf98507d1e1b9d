"""The tiny Qwen2.5-VL checkpoint: Qwen's special ids, a radiology BPE, and swift can load and encode it."""
from __future__ import annotations

import json

import pytest

from swift_plugins.editgrpo.tiny.model import BPE_VOCAB_SIZE, FIRST_SPECIAL_ID, MODEL_VOCAB_SIZE, QWEN_SPECIAL_TOKENS


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model_dir)


def test_special_tokens_sit_on_qwen_ids(tokenizer):
    ids = tokenizer.convert_tokens_to_ids(list(QWEN_SPECIAL_TOKENS))
    assert ids == list(range(FIRST_SPECIAL_ID, FIRST_SPECIAL_ID + 22))
    assert tokenizer.convert_tokens_to_ids("<|im_end|>") == 151645
    assert tokenizer.convert_tokens_to_ids("<|vision_start|>") == 151652
    assert tokenizer.convert_tokens_to_ids("<|image_pad|>") == 151655
    assert tokenizer.eos_token == "<|im_end|>" and tokenizer.pad_token == "<|endoftext|>"
    assert len(tokenizer) == FIRST_SPECIAL_ID + len(QWEN_SPECIAL_TOKENS)


def test_radiology_text_round_trips_in_few_tokens(tokenizer, iu_findings):
    for report in iu_findings[:200]:
        ids = tokenizer(report, add_special_tokens=False)["input_ids"]
        assert tokenizer.decode(ids) == report
        assert max(ids) < FIRST_SPECIAL_ID
    # trained on radiology text: common findings words are single tokens, reports compress well
    words = "The heart is normal in size. No pleural effusion or pneumothorax."
    assert len(tokenizer(words, add_special_tokens=False)["input_ids"]) <= 14
    # special tokens inside text are recognised, not split
    assert tokenizer("<|im_start|>user\nhi<|im_end|>")["input_ids"][0] == 151644


def test_model_config_is_tiny_qwen2_5_vl(tiny_model_dir):
    config = json.loads((tiny_model_dir / "config.json").read_text())
    text, vision = config["text_config"], config["vision_config"]
    assert config["model_type"] == "qwen2_5_vl"
    assert (text["hidden_size"], text["num_hidden_layers"], text["num_attention_heads"], text["num_key_value_heads"]) == (64, 2, 4, 2)
    head_dim = text["hidden_size"] // text["num_attention_heads"]
    assert sum(text["rope_parameters"]["mrope_section"]) == head_dim // 2
    assert (vision["depth"], vision["hidden_size"], vision["out_hidden_size"]) == (2, 32, 64)
    assert text["vocab_size"] == MODEL_VOCAB_SIZE
    assert config["image_token_id"] == 151655
    processor = json.loads((tiny_model_dir / "processor_config.json").read_text())["image_processor"]
    assert (processor["patch_size"], processor["merge_size"]) == (14, 2)
    assert (tiny_model_dir / "model.safetensors").stat().st_size < 100e6


def test_random_model_samples_radiology_subwords(tiny_model_dir, tokenizer):
    """The shaped output layer: sampled ids are BPE sub-words or <|im_end|>, never filler ids."""
    import torch
    from transformers import Qwen2_5_VLForConditionalGeneration

    model = Qwen2_5_VLForConditionalGeneration.from_pretrained(tiny_model_dir)
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": "Describe the findings."}],
        add_generation_prompt=True,
        return_tensors="pt",
        return_dict=True,
    )
    torch.manual_seed(0)
    out = model.generate(**prompt, do_sample=True, temperature=1.0, max_new_tokens=24, num_return_sequences=4)
    generated = out[:, prompt["input_ids"].shape[1] :]
    real_vocab = tokenizer.backend_tokenizer.get_vocab_size(with_added_tokens=False)
    assert real_vocab == FIRST_SPECIAL_ID
    allowed = (generated < BPE_VOCAB_SIZE) | (generated == 151645) | (generated == 151643)
    assert bool(allowed.all()), generated
    assert len({tuple(row.tolist()) for row in generated}) == 4  # sampling is not degenerate


def test_swift_loads_and_encodes_with_qwen2_5_vl_template(tiny_model_dir, tmp_path, monkeypatch):
    import numpy as np
    from PIL import Image
    from swift.model import get_model_processor
    from swift.template import get_template

    monkeypatch.setenv("MAX_PIXELS", "12544")
    image = tmp_path / "frontal.png"
    Image.fromarray((np.random.default_rng(0).random((112, 112, 3)) * 255).astype("uint8")).save(image)
    _, processor = get_model_processor(str(tiny_model_dir), load_model=False)
    template = get_template(processor, template_type="qwen2_5_vl")
    encoded = template.encode(
        {
            "messages": [
                {"role": "user", "content": "<image>Describe the findings."},
                {"role": "assistant", "content": "No pleural effusion."},
            ],
            "images": [str(image)],
        }
    )
    ids = encoded["input_ids"]
    assert ids.count(151655) == 16  # 112x112 image -> 8x8 patches -> 16 merged visual tokens
    assert 151652 in ids and 151645 in ids


def test_cli_builds_with_extra_corpus(tmp_path):
    from transformers import AutoTokenizer

    from swift_plugins.editgrpo.cli import main

    corpus = tmp_path / "extra.txt"
    corpus.write_text("Pneumomediastinumoid seen.\n" * 200)
    assert main(["tiny-model", str(tmp_path / "model"), "--corpus", str(corpus)]) == 0
    tokenizer = AutoTokenizer.from_pretrained(tmp_path / "model")
    assert len(tokenizer("Pneumomediastinumoid", add_special_tokens=False)["input_ids"]) == 1
