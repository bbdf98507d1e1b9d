"""The tiny checkpoints (Qwen2.5-VL, and per family): a radiology BPE, Qwen's special tokens after it, and swift
can load and encode them."""
from __future__ import annotations

import hashlib
import json

import pytest

from swift_plugins.editgrpo.tiny.model import (BPE_VOCAB_SIZE, QWEN3_EXTRA_TOKENS, QWEN_SPECIAL_TOKENS,
                                               TINY_ARCHITECTURES, tiny_architecture)
from templates.families import FAMILIES

# sha256 of every file of `build_tiny_model(out)` (Qwen2.5-VL) as written before the other families were added:
# the demo's, the arena's and the benchmarks' results were measured on exactly this checkpoint. Deterministic with
# the pinned torch/tokenizers/transformers (constraints.txt); a deliberate change of the checkpoint updates these.
QWEN2_5_VL_FILES = {
    "chat_template.jinja": "a0bc6f6fc7a29a80017a433e8f03a1cc1236e838a944a2d034295a60c4f2fddb",
    "config.json": "db5282a7c8664b91a4e54ef2d7eb767872a5ac1b84e5870e225cf6e052bb6066",
    "generation_config.json": "4eb3fb50639026eece77453603f072e9dd41e410f06df25974df608c174eefef",
    "model.safetensors": "1ac6192802497844826da687aaf242d756d3aff55646cb86da39094c0bee0215",
    "processor_config.json": "061bed4562cc184857fb72e44022d69390bf7352835f2195523847295730d016",
    "tokenizer.json": "e8b0e4357b7620e13adaf725544a995211adde217c409b021a0f582be0add539",
    "tokenizer_config.json": "c5f513c6c6d470a5d380a888424723bf9721d95ead25d595b40886861326c093",
}
NEW_FAMILIES = [name for name in FAMILIES if name != "qwen2_5_vl"]


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model_dir)


def test_special_tokens_follow_the_bpe_in_qwen_order(tokenizer):
    n_bpe = tokenizer.backend_tokenizer.get_vocab_size(with_added_tokens=False)
    assert 1000 < n_bpe <= BPE_VOCAB_SIZE
    ids = tokenizer.convert_tokens_to_ids(list(QWEN_SPECIAL_TOKENS))
    assert ids == list(range(n_bpe, n_bpe + 22))
    assert tokenizer.eos_token == "<|im_end|>" and tokenizer.pad_token == "<|endoftext|>"
    assert len(tokenizer) == n_bpe + len(QWEN_SPECIAL_TOKENS)


def test_radiology_text_round_trips_in_few_tokens(tokenizer, iu_findings):
    for report in iu_findings[:200]:
        ids = tokenizer(report, add_special_tokens=False)["input_ids"]
        assert tokenizer.decode(ids) == report
        assert max(ids) < tokenizer.convert_tokens_to_ids("<|endoftext|>")
    # trained on radiology text: common findings words are single tokens, reports compress well
    words = "The heart is normal in size. No pleural effusion or pneumothorax."
    assert len(tokenizer(words, add_special_tokens=False)["input_ids"]) <= 14
    # special tokens inside text are recognised, not split
    assert tokenizer("<|im_start|>user\nhi<|im_end|>")["input_ids"][0] == tokenizer.convert_tokens_to_ids("<|im_start|>")


def test_model_config_is_tiny_qwen2_5_vl(tiny_model_dir, tokenizer):
    config = json.loads((tiny_model_dir / "config.json").read_text())
    text, vision = config["text_config"], config["vision_config"]
    assert config["model_type"] == "qwen2_5_vl"
    assert (text["hidden_size"], text["num_hidden_layers"], text["num_attention_heads"], text["num_key_value_heads"]) == (64, 2, 4, 2)
    head_dim = text["hidden_size"] // text["num_attention_heads"]
    assert sum(text["rope_parameters"]["mrope_section"]) == head_dim // 2
    assert (vision["depth"], vision["hidden_size"], vision["out_hidden_size"]) == (2, 32, 64)
    assert text["vocab_size"] == len(tokenizer) < 5000  # its own vocabulary, not Qwen's 151,936 rows
    for key, token in (("image_token_id", "<|image_pad|>"), ("video_token_id", "<|video_pad|>"),
                       ("vision_start_token_id", "<|vision_start|>"), ("vision_end_token_id", "<|vision_end|>")):
        assert config[key] == tokenizer.convert_tokens_to_ids(token)
    assert text["eos_token_id"] == tokenizer.convert_tokens_to_ids("<|im_end|>")
    processor = json.loads((tiny_model_dir / "processor_config.json").read_text())["image_processor"]
    assert (processor["patch_size"], processor["merge_size"]) == (14, 2)
    assert (tiny_model_dir / "model.safetensors").stat().st_size < 5e6


def test_random_model_samples_radiology_subwords(tiny_model_dir, tokenizer):
    """The shaped output layer: sampled ids are BPE sub-words or <|im_end|>, never other special ids."""
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
    n_bpe = tokenizer.backend_tokenizer.get_vocab_size(with_added_tokens=False)
    stops = tokenizer.convert_tokens_to_ids(["<|im_end|>", "<|endoftext|>"])
    allowed = (generated < n_bpe) | (generated == stops[0]) | (generated == stops[1])
    assert bool(allowed.all()), generated
    assert len({tuple(row.tolist()) for row in generated}) == 4  # sampling is not degenerate


def test_swift_loads_and_encodes_with_the_cxr_template(tiny_model_dir, tokenizer, tmp_path, monkeypatch):
    """The CXR template reads the media ids from the tokenizer; swift's stock one would emit 151655."""
    import numpy as np
    from PIL import Image
    from swift.model import get_model_processor
    from swift.template import get_template

    from templates import CXR_TEMPLATE, register_templates

    monkeypatch.setenv("MAX_PIXELS", "12544")
    image = tmp_path / "frontal.png"
    Image.fromarray((np.random.default_rng(0).random((112, 112, 3)) * 255).astype("uint8")).save(image)
    _, processor = get_model_processor(str(tiny_model_dir), load_model=False)
    register_templates()
    template = get_template(processor, template_type=CXR_TEMPLATE)
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
    image_pad, vision_start, im_end = tokenizer.convert_tokens_to_ids(["<|image_pad|>", "<|vision_start|>", "<|im_end|>"])
    assert ids.count(image_pad) == 16  # 112x112 image -> 8x8 patches -> 16 merged visual tokens
    assert vision_start in ids and im_end in ids and max(ids) < len(tokenizer)


def test_qwen2_5_vl_checkpoint_is_byte_for_byte_unchanged(tiny_model_dir):
    written = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(tiny_model_dir.iterdir())}
    assert written == QWEN2_5_VL_FILES


def test_every_family_has_a_tiny_architecture():
    assert list(TINY_ARCHITECTURES) == list(FAMILIES)
    with pytest.raises(ValueError, match="unknown model family 'llava'; the table has qwen2_5_vl, qwen3_vl, qwen3_5"):
        tiny_architecture("llava")


@pytest.fixture(scope="module")
def family_dirs(tmp_path_factory):
    """The Qwen3-VL and Qwen3.5 checkpoints, built by the CLI (`editgrpo tiny-model OUT --family F`)."""
    from swift_plugins.editgrpo.cli import main

    dirs = {}
    for name in NEW_FAMILIES:
        dirs[name] = tmp_path_factory.mktemp(f"tiny_{name}")
        assert main(["tiny-model", str(dirs[name]), "--family", name]) == 0
    return dirs


@pytest.mark.parametrize("name", NEW_FAMILIES)
def test_family_checkpoint_config_tokenizer_and_processor(name, family_dirs):
    from transformers import AutoTokenizer

    family, out = FAMILIES[name], family_dirs[name]
    tokenizer = AutoTokenizer.from_pretrained(out)
    n_bpe = tokenizer.backend_tokenizer.get_vocab_size(with_added_tokens=False)
    specials = list(QWEN_SPECIAL_TOKENS + QWEN3_EXTRA_TOKENS)
    assert tokenizer.convert_tokens_to_ids(specials) == list(range(n_bpe, n_bpe + len(specials))) == list(
        range(n_bpe, len(tokenizer)))
    assert type(tokenizer).__name__ == tiny_architecture(name).tokenizer_class
    assert tokenizer.eos_token == family.end_token and tokenizer.pad_token == "<|endoftext|>"
    assert tokenizer.decode(tokenizer.encode("<think>\n\n</think>\n\nNo effusion.", add_special_tokens=False)) == (
        "<think>\n\n</think>\n\nNo effusion.")  # Qwen3's thinking tags are one token each, kept in decoding
    config = json.loads((out / "config.json").read_text())
    assert (config["model_type"], config["architectures"]) == (family.config_model_type, [family.architecture])
    assert config["text_config"]["vocab_size"] == len(tokenizer) < 5000
    assert config["image_token_id"] == tokenizer.convert_tokens_to_ids("<|image_pad|>")
    assert config["text_config"]["eos_token_id"] == tokenizer.convert_tokens_to_ids(family.end_token)
    processor = json.loads((out / "processor_config.json").read_text())["image_processor"]
    assert (processor["patch_size"], processor["merge_size"]) == (family.patch_size, family.merge_size) == (16, 2)
    assert (out / "model.safetensors").stat().st_size < 5e6


@pytest.mark.parametrize("name", NEW_FAMILIES)
def test_family_random_model_samples_radiology_subwords_with_an_image(name, family_dirs):
    """The shaped output layer on each architecture (vision tower included): sub-words or a stop id only."""
    import numpy as np
    import torch
    import transformers
    from PIL import Image
    from transformers import AutoProcessor

    out = family_dirs[name]
    processor = AutoProcessor.from_pretrained(out)
    tokenizer = processor.tokenizer
    model = getattr(transformers, FAMILIES[name].architecture).from_pretrained(out)
    image = Image.fromarray((np.random.default_rng(0).random((64, 64, 3)) * 255).astype("uint8"))
    text = processor.apply_chat_template([{"role": "user", "content": [{"type": "image"}, {"type": "text",
                                          "text": "Describe the findings."}]}], add_generation_prompt=True)
    inputs = processor(text=[text], images=[image], return_tensors="pt")
    torch.manual_seed(0)
    generated = model.generate(**inputs, do_sample=True, temperature=1.0, max_new_tokens=16,
                               num_return_sequences=4)[:, inputs["input_ids"].shape[1]:]
    n_bpe = tokenizer.backend_tokenizer.get_vocab_size(with_added_tokens=False)
    stops = tokenizer.convert_tokens_to_ids([FAMILIES[name].end_token, "<|endoftext|>"])
    assert bool(((generated < n_bpe) | (generated == stops[0]) | (generated == stops[1])).all()), generated
    assert len({tuple(row.tolist()) for row in generated}) == 4


def test_cli_builds_with_extra_corpus(tmp_path):
    from transformers import AutoTokenizer

    from swift_plugins.editgrpo.cli import main

    corpus = tmp_path / "extra.txt"
    corpus.write_text("Pneumomediastinumoid seen.\n" * 200)
    assert main(["tiny-model", str(tmp_path / "model"), "--corpus", str(corpus)]) == 0
    tokenizer = AutoTokenizer.from_pretrained(tmp_path / "model")
    assert len(tokenizer("Pneumomediastinumoid", add_special_tokens=False)["input_ids"]) == 1
