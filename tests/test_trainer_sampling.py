"""Rollouts on the transformers engine (`--use_vllm false`) sample from exactly what the run asked,
whatever the checkpoint's generation_config.json says (Qwen-Instruct ships near-greedy defaults)."""
from __future__ import annotations

from types import SimpleNamespace

import pytest
from transformers import GenerationConfig

from swift_plugins.editgrpo.config import EditGRPOConfigError
from swift_plugins.editgrpo.tiny.swift_run import (completion_rows, grpo_args, logged_steps, run, swift_command,
                                                   write_iu_dataset)
from swift_plugins.editgrpo.trainer import MEDIA_TOKENS, cut_at_media_tokens, rollout_generation_config

# Qwen2.5-VL-Instruct's generation_config.json sampling fields (SFT checkpoints keep them)
QWEN_INSTRUCT = {"do_sample": True, "temperature": 0.1, "top_k": 1, "top_p": 0.001, "repetition_penalty": 1.05}
# swift's GRPO defaults and the paper's rollout sampling: the full distribution at temperature 1
PAPER = {"temperature": 1.0, "top_k": -1, "top_p": 1.0, "min_p": 0.0, "repetition_penalty": 1.0}
G = 4


@pytest.fixture(scope="module")
def tiny(tiny_model_dir):
    from transformers import AutoTokenizer, Qwen2_5_VLForConditionalGeneration

    return (Qwen2_5_VLForConditionalGeneration.from_pretrained(tiny_model_dir),
            AutoTokenizer.from_pretrained(tiny_model_dir))


def checkpoint_config(model, **fields) -> GenerationConfig:
    """The tiny checkpoint's generation config (token ids only) with `fields` added."""
    return GenerationConfig(**{**model.generation_config.to_dict(), **fields})


def rollout_processors(tiny, checkpoint: GenerationConfig, **asked) -> list:
    """The logits processors `generate` applies to a rollout of swift's transformers engine whose
    generation defaults are `rollout_generation_config(checkpoint, request)`, on a model that loaded
    `checkpoint` (transformers fills what is still None from it)."""
    from swift.infer_engine import RequestConfig
    from swift.infer_engine.transformers_engine import TransformersEngine

    model, tokenizer = tiny
    request = RequestConfig(max_tokens=16, **{**PAPER, **asked})
    engine = SimpleNamespace(generation_config=rollout_generation_config(checkpoint, request), tokenizer=tokenizer)
    generation_config = TransformersEngine._prepare_generation_config(engine, request)
    saved, model.generation_config = model.generation_config, checkpoint
    try:
        effective, _ = model._prepare_generation_config(generation_config)
        return list(model._get_logits_processor(effective, input_ids_seq_length=8, device="cpu"))
    finally:
        model.generation_config = saved


def kinds(processors) -> list[str]:
    return [type(p).__name__ for p in processors]


@pytest.mark.parametrize("fields", [QWEN_INSTRUCT, {}], ids=["qwen_instruct_defaults", "no_sampling_fields"])
def test_top_k_minus_one_samples_the_full_distribution(tiny, fields):
    """swift maps --top_k -1 to None and fills it from the checkpoint (top_k 1: one completion per group);
    with no top_k there, transformers adds top-k 50. Asked: no warper at all."""
    checkpoint = checkpoint_config(tiny[0], **fields)
    assert rollout_processors(tiny, checkpoint) == []
    assert checkpoint.top_k == fields.get("top_k")  # the checkpoint's own config (saved with the model) is kept


def test_asked_sampling_is_applied_exactly(tiny):
    """Every flag the run sets wins over the checkpoint, --min_p included (swift drops it on this engine)."""
    processors = rollout_processors(tiny, checkpoint_config(tiny[0], **QWEN_INSTRUCT), temperature=0.7, top_k=5,
                                    top_p=0.9, min_p=0.05, repetition_penalty=1.1)
    assert kinds(processors) == ["RepetitionPenaltyLogitsProcessor", "TemperatureLogitsWarper", "TopKLogitsWarper",
                                 "TopPLogitsWarper", "MinPLogitsWarper"]
    assert [processors[0].penalty, processors[1].temperature, processors[2].top_k, processors[3].top_p,
            processors[4].min_p] == pytest.approx([1.1, 0.7, 5, 0.9, 0.05])


def test_checkpoint_warpers_without_a_flag_are_switched_off(tiny):
    checkpoint = checkpoint_config(tiny[0], **QWEN_INSTRUCT, min_p=0.2, typical_p=0.5, epsilon_cutoff=3e-4,
                                   eta_cutoff=3e-4, no_repeat_ngram_size=3, min_new_tokens=4)
    processors = rollout_processors(tiny, checkpoint)
    assert kinds(processors) == ["MinPLogitsWarper"] and processors[0].min_p == 0.0  # min_p 0 keeps every token


def test_processor_that_cannot_be_switched_off_is_refused(tiny):
    from swift.infer_engine import RequestConfig

    checkpoint = checkpoint_config(tiny[0], **QWEN_INSTRUCT, suppress_tokens=[5], forced_eos_token_id=2)
    with pytest.raises(EditGRPOConfigError, match=r"sets suppress_tokens=\[5\], forced_eos_token_id=2"):
        rollout_generation_config(checkpoint, RequestConfig(**PAPER))


@pytest.mark.slow
def test_swift_grpo_on_qwen_instruct_checkpoint_samples_distinct_completions(tiny_model_dir, tmp_path):
    """One real `swift rlhf --rlhf_type grpo` step on the tiny checkpoint given Qwen-Instruct's defaults,
    with the paper's sampling flags: before, all 4 completions of every group were identical."""
    import shutil

    model_dir = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model_dir)
    GenerationConfig(**{**GenerationConfig.from_pretrained(model_dir).to_dict(), **QWEN_INSTRUCT}).save_pretrained(model_dir)
    dataset = write_iu_dataset(tmp_path / "data", 2)
    args = grpo_args(dataset, G, 2, 16, 1) + ["--top_k", "-1", "--top_p", "1.0"]  # and --temperature 1.0
    argv, env = swift_command("rlhf", model_dir, tmp_path / "out", args, env={"EDITGRPO_EDITS": "off"})
    result = run(argv, env)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-6000:]
    rows = completion_rows(tmp_path / "out")
    assert len(rows) == 2 * G
    for start in range(0, len(rows), G):
        group = rows[start:start + G]
        assert len({row["prompt"] for row in group}) == 1
        assert len({row["completion"] for row in group}) == G, [row["completion"] for row in group]
    assert logged_steps(tmp_path / "out")[0]["frac_reward_zero_std"] < 1


def test_a_sampled_media_token_cuts_the_completion_before_it(tiny):
    """swift would expand a sampled <|image_pad|> as an image and stop the run; the rollout ends before it."""
    _, tokenizer = tiny
    text_ids = tokenizer.encode("Heart size is normal. No effusion.", add_special_tokens=False)
    media = set(tokenizer.convert_tokens_to_ids(list(MEDIA_TOKENS)))
    image_pad = tokenizer.convert_tokens_to_ids("<|image_pad|>")

    def sample(ids, logprobs):
        return SimpleNamespace(response_token_ids=ids, rollout_logprobs=logprobs, response_loss_mask=[],
                               messages=[{"role": "assistant", "content": tokenizer.decode(ids)}],
                               finish_reason="stop", routed_experts=None)

    clean = sample(text_ids, [-0.5] * len(text_ids))
    dirty = sample(text_ids[:3] + [image_pad] + text_ids[3:], [-0.1] * (len(text_ids) + 1))
    decode = lambda sample, ids: tokenizer.decode(ids, skip_special_tokens=True)  # noqa: E731
    assert cut_at_media_tokens([clean, dirty], media, decode) == 1
    assert clean.response_token_ids == text_ids and clean.finish_reason == "stop"
    assert dirty.response_token_ids == text_ids[:3] and dirty.rollout_logprobs == [-0.1] * 3
    assert dirty.messages[-1]["content"] == tokenizer.decode(text_ids[:3]) and "<|" not in dirty.messages[-1]["content"]
    assert dirty.finish_reason == "length"
    assert cut_at_media_tokens([dirty], media, decode) == 0  # nothing left to cut
