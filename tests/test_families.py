"""The model-family table (`templates.families`): its facts against swift's and transformers' own
registrations, the pixel budget, the clear errors, the CXR templates per family, and (slow) each
family's tiny checkpoint through `swift sft` -> `swift rlhf` with the plugin -> `swift infer`."""
from __future__ import annotations

import json
import os

import pytest

from templates.families import (DEFAULT_FAMILY, FAMILIES, PAPER_MAX_PIXELS, PAPER_MIN_PIXELS, FamilyError,
                                check_template, family_of_checkpoint, family_of_config, family_of_template,
                                get_family, resolve)

NAMES = list(FAMILIES)
ENCODE_PIXELS = 112 * 112  # on Qwen2.5-VL's grid: 16 visual tokens per image; every test in one process uses 16


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory, tiny_model_dir):
    """family -> tiny checkpoint, each built once (the Qwen2.5-VL one is conftest's)."""
    from swift_plugins.editgrpo.tiny.model import build_tiny_model

    built = {DEFAULT_FAMILY: tiny_model_dir}

    def get(name: str):
        if name not in built:
            built[name] = build_tiny_model(tmp_path_factory.mktemp(f"tiny_{name}"), family=name)
        return built[name]

    return get


# ----------------------------------------------------------------------------- the table's facts

@pytest.mark.parametrize("name", NAMES)
def test_family_row_matches_swift_registrations(name):
    import swift.model  # noqa: F401  (registers the models)
    from swift.model import MODEL_MAPPING
    from swift.template import TEMPLATE_MAPPING

    family = FAMILIES[name]
    meta = MODEL_MAPPING[family.model_type]
    assert family.architecture in meta.architectures
    assert TEMPLATE_MAPPING[family.base_template].template_type == family.base_template
    assert any(group.template == family.base_template for group in meta.model_groups)  # swift's own pairing
    assert any(m.ms_model_id.endswith("/" + family.checkpoint) for g in meta.model_groups for m in g.models)


@pytest.mark.parametrize("name", NAMES)
def test_family_row_matches_transformers_configs(name):
    """Patch and merge size, config model_type and architecture are transformers' defaults for the family."""
    import transformers

    family = FAMILIES[name]
    config_class = transformers.AutoConfig.for_model(family.config_model_type).__class__
    config = config_class()
    assert config.model_type == family.config_model_type
    assert (config.vision_config.patch_size, config.vision_config.spatial_merge_size) == (family.patch_size,
                                                                                         family.merge_size)
    assert getattr(transformers, family.architecture).config_class is config_class


def test_qwen3_5_is_a_vision_language_class_in_transformers_5(tiny_models):
    """Qwen3.5 has no separate -VL checkpoint: in transformers 5 the one class carries the vision tower."""
    import transformers
    from transformers.models.auto.modeling_auto import MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES

    family = FAMILIES["qwen3_5"]
    assert int(transformers.__version__.split(".")[0]) >= 5
    assert MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES[family.config_model_type] == family.architecture
    model = getattr(transformers, family.architecture).from_pretrained(tiny_models("qwen3_5"))
    assert hasattr(model.model, "visual") and model.config.text_config.layer_types == ["linear_attention",
                                                                                     "full_attention"]


def test_pixel_defaults_keep_the_papers_token_budget():
    paper = FAMILIES["qwen2_5_vl"]
    assert (paper.max_pixels, paper.min_pixels) == (PAPER_MAX_PIXELS, PAPER_MIN_PIXELS) == (401408, 262144)
    for family in FAMILIES.values():
        assert (family.visual_tokens(family.max_pixels), family.visual_tokens(family.min_pixels)) == (512, 334)
    assert (FAMILIES["qwen3_vl"].max_pixels, FAMILIES["qwen3_vl"].min_pixels) == (524288, 342392)
    # the same pixel numbers would give a 16-px family fewer tokens: the reason for rescaling
    assert FAMILIES["qwen3_vl"].visual_tokens(PAPER_MAX_PIXELS) == 392


@pytest.mark.parametrize("name", NAMES)
def test_swift_counts_tokens_on_the_familys_grid(name, tiny_models, monkeypatch):
    """swift's loader turns MAX_PIXELS into IMAGE_MAX_TOKEN_NUM with the family's patch size: the table's."""
    from swift.model import get_model_processor

    family = FAMILIES[name]
    for variable in ("IMAGE_MAX_TOKEN_NUM", "IMAGE_MIN_TOKEN_NUM"):
        monkeypatch.setenv(variable, "0")  # recorded, so what swift writes is undone after the test
        monkeypatch.delenv(variable)
    monkeypatch.setenv("MAX_PIXELS", "16384")
    get_model_processor(str(tiny_models(name)), load_model=False, model_type=family.model_type)
    assert int(os.environ["IMAGE_MAX_TOKEN_NUM"]) == family.visual_tokens(16384) == {14: 20, 16: 16}[family.patch_size]


# ----------------------------------------------------------------------------- clear errors

def test_unknown_family_names_the_table():
    with pytest.raises(FamilyError, match="unknown model family 'llava'; the table has qwen2_5_vl, qwen3_vl, qwen3_5"):
        get_family("llava")


def test_unsupported_architecture_names_the_supported_ones(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"architectures": ["LlavaForConditionalGeneration"],
                                                      "model_type": "llava"}))
    with pytest.raises(FamilyError) as error:
        family_of_checkpoint(tmp_path)
    message = str(error.value)
    assert "LlavaForConditionalGeneration" in message and "not a supported policy family" in message
    assert all(f.architecture in message and f.name in message for f in FAMILIES.values())
    with pytest.raises(FamilyError, match="cannot read the model family"):
        family_of_checkpoint(tmp_path / "missing")


@pytest.mark.parametrize("name", NAMES)
def test_checkpoint_config_gives_the_family(name, tiny_models):
    assert family_of_checkpoint(tiny_models(name)).name == name
    assert family_of_config({"model_type": FAMILIES[name].config_model_type}).name == name  # no architectures


def test_template_of_another_family_is_refused():
    qwen3 = FAMILIES["qwen3_vl"]
    check_template(qwen3, "qwen3_vl_cxr")
    check_template(qwen3, "qwen3_vl")  # swift's own template of the family is allowed
    with pytest.raises(FamilyError, match=r"'qwen2_5_vl_cxr' does not fit the Qwen3-VL model .*Qwen2.5-VL's.*qwen3_vl_cxr"):
        check_template(qwen3, "qwen2_5_vl_cxr")
    with pytest.raises(FamilyError, match="not a template of any family"):
        check_template(qwen3, "llava1_5_hf")
    assert family_of_template("qwen3_5_cxr") is FAMILIES["qwen3_5"] and family_of_template("chatml") is None


@pytest.mark.parametrize("max_pixels, min_pixels, message", [
    (500, None, "MAX_PIXELS=500 holds no visual token of Qwen3-VL .32x32 = 1024 pixels a token: 16-px patches"),
    (3136, None, "MAX_PIXELS=3136 allows 3 visual tokens .* MIN_PIXELS unset .*asks for 4; raise MAX_PIXELS to at least 4096"),
    (401408, 600000, "allows 392 visual tokens .* MIN_PIXELS=600000 asks for 585"),
    (-1, None, "expected a whole number of pixels"),
])
def test_pixel_bounds_that_do_not_fit_the_grid(max_pixels, min_pixels, message):
    with pytest.raises(FamilyError, match=message):
        FAMILIES["qwen3_vl"].check_pixels(max_pixels, min_pixels)
    assert FAMILIES["qwen2_5_vl"].check_pixels(3136) == (4, 4)  # the same 3136 pixels are 4 tokens on 28 px


def test_resolve_derives_checks_and_defaults(tmp_path):
    paper = resolve()
    assert (paper.family.name, paper.template, paper.max_pixels, paper.min_pixels) == (
        "qwen2_5_vl", "qwen2_5_vl_cxr", 401408, 262144)
    assert paper.base_model.endswith("Qwen2.5-VL-3B-Instruct")
    checkpoint = tmp_path / "ckpt"
    checkpoint.mkdir()
    (checkpoint / "config.json").write_text(json.dumps({"architectures": ["Qwen3_5ForConditionalGeneration"]}))
    derived = resolve(base_model=str(checkpoint), max_pixels="12544")
    assert (derived.family.name, derived.template, derived.max_pixels, derived.min_pixels, derived.base_model) == (
        "qwen3_5", "qwen3_5_cxr", 12544, 12544, str(checkpoint))  # MIN_PIXELS never above MAX_PIXELS
    assert "MODEL_TYPE=qwen3_5\n" in derived.shell() and "TEMPLATE=qwen3_5_cxr\n" in derived.shell()
    with pytest.raises(FamilyError, match="MODEL_FAMILY=qwen3_vl but .*config.json is a Qwen3.5 checkpoint"):
        resolve(family="qwen3_vl", base_model=str(checkpoint))
    with pytest.raises(FamilyError, match="MAX_PIXELS='big'"):
        resolve(max_pixels="big")


# ----------------------------------------------------------------------------- the CXR templates in swift

def test_every_family_gets_a_cxr_template_copied_from_swifts():
    import dataclasses

    from swift.template import TEMPLATE_MAPPING
    from swift.template.templates.qwen import QwenTemplateMeta

    from templates import CXR_TEMPLATES, register_templates
    from templates.qwen_cxr import CXRQwen2_5VLTemplate

    assert register_templates() == list(CXR_TEMPLATES) == [f.cxr_template for f in FAMILIES.values()]
    for family in FAMILIES.values():
        meta, base = TEMPLATE_MAPPING[family.cxr_template], TEMPLATE_MAPPING[family.base_template]
        assert meta.default_system is None and issubclass(meta.template_cls, base.template_cls)
        same = {f.name for f in dataclasses.fields(base)} - {"template_type", "template_cls", "default_system"}
        assert {k: getattr(meta, k) for k in same} == {k: getattr(base, k) for k in same}
    assert TEMPLATE_MAPPING["qwen3_5_cxr"].non_thinking_prefix == "<think>\n\n</think>\n\n"
    # the Qwen2.5-VL one is exactly what the project registered before the table existed
    before = QwenTemplateMeta("qwen2_5_vl_cxr", template_cls=CXRQwen2_5VLTemplate, default_system=None)
    assert dataclasses.asdict(before) == dataclasses.asdict(TEMPLATE_MAPPING["qwen2_5_vl_cxr"])


@pytest.mark.parametrize("name", NAMES)
def test_cxr_template_encodes_the_familys_checkpoint(name, tiny_models, tmp_path, monkeypatch):
    """Media ids from the tokenizer (not swift's hard-coded ones), 16 visual tokens per image on every family's grid."""
    import numpy as np
    from PIL import Image
    from swift.model import get_model_processor
    from swift.template import get_template

    from templates import register_templates

    family = FAMILIES[name]
    monkeypatch.setenv("MAX_PIXELS", str(family.same_budget(ENCODE_PIXELS)))
    image = tmp_path / "frontal.png"
    Image.fromarray((np.random.default_rng(0).random((112, 112, 3)) * 255).astype("uint8")).save(image)
    _, processor = get_model_processor(str(tiny_models(name)), load_model=False, model_type=family.model_type)
    register_templates()
    template = get_template(processor, template_type=family.cxr_template)
    template.set_mode("train")
    encoded = template.encode({"messages": [{"role": "user", "content": "<image>Describe the findings."},
                                            {"role": "assistant", "content": "No pleural effusion."}],
                               "images": [str(image)]})
    tokenizer = processor.tokenizer
    ids = encoded["input_ids"]
    image_pad, end = tokenizer.convert_tokens_to_ids(["<|image_pad|>", family.end_token])
    assert template.image_token_id == image_pad < len(tokenizer)
    assert ids.count(image_pad) == 16 and max(ids) < len(tokenizer)
    target = tokenizer.decode([t for t, label in zip(ids, encoded["labels"]) if label != -100])
    assert target.rstrip("\n").endswith("No pleural effusion." + family.end_token)
    text = tokenizer.decode(ids)
    assert "system" not in text  # no default system prompt: the user prompt carries the role line
    assert ("<think>\n\n</think>\n\n" in text) == (name == "qwen3_5")  # Qwen3.5: swift's non-thinking prefix
    template.set_mode("pt")
    from types import SimpleNamespace

    from swift_plugins.editgrpo.trainer import response_prefix

    assert response_prefix(template, SimpleNamespace(extra={})) == family.response_prefix  # rollouts start with it
    thinking = SimpleNamespace(extra={"chat_template_kwargs": {"enable_thinking": True}})
    assert response_prefix(template, thinking) == ("" if name == "qwen2_5_vl" else "<think>\n")  # per-row switch


def test_template_of_another_family_stops_at_the_processor(tiny_models):
    from swift.model import get_model_processor
    from swift.template import get_template

    from templates import register_templates

    register_templates()
    _, processor = get_model_processor(str(tiny_models("qwen2_5_vl")), load_model=False)
    with pytest.raises(FamilyError, match="qwen3_vl_cxr is for Qwen3-VL .* but the model is 'qwen2_5_vl'"):
        get_template(processor, template_type="qwen3_vl_cxr")


def test_pixel_bounds_are_checked_when_the_template_is_built(tiny_models, monkeypatch):
    from swift.model import get_model_processor
    from swift.template import get_template

    from templates import register_templates

    register_templates()
    _, processor = get_model_processor(str(tiny_models("qwen3_vl")), load_model=False, model_type="qwen3_vl")
    monkeypatch.setenv("MAX_PIXELS", "3136")  # 3 tokens of 32x32 px, below qwen_vl_utils' minimum of 4
    monkeypatch.delenv("MIN_PIXELS", raising=False)
    with pytest.raises(FamilyError, match="MAX_PIXELS=3136 allows 3 visual tokens of Qwen3-VL"):
        get_template(processor, template_type="qwen3_vl_cxr")


@pytest.mark.parametrize("name", NAMES)
def test_trainer_closes_an_edit_with_the_familys_end_token(name, tiny_models):
    from transformers import AutoTokenizer

    from swift_plugins.editgrpo.algorithm.step import completion_ids
    from swift_plugins.editgrpo.trainer import edit_end_id

    family = FAMILIES[name]
    tokenizer = AutoTokenizer.from_pretrained(tiny_models(name))
    end_id = edit_end_id(tokenizer, family.cxr_template)
    assert end_id == tokenizer.convert_tokens_to_ids(family.end_token) != tokenizer.convert_tokens_to_ids("<|endoftext|>")
    text = "Heart size is normal. No pleural effusion."
    ids, kept = completion_ids(text, lambda t: tokenizer.encode(t, add_special_tokens=False),
                               lambda i: tokenizer.decode(i, skip_special_tokens=True), end_id, 64)
    assert kept == text and tokenizer.decode(ids) == text + family.end_token
    assert edit_end_id(tokenizer, "chatml") == tokenizer.eos_token_id  # a template outside the table: the eos


# ----------------------------------------------------------------------------- slow: sft -> rlhf -> infer

G, PROMPTS, MAX_NEW, STEPS = 4, 2, 64, 2
RECORDER = '''
import json, sys
sys.path.insert(0, {root!r})
from swift_plugins.editgrpo import register
from swift_plugins.editgrpo.trainer import EditGRPOTrainer, _edited

register()
apply_edits = EditGRPOTrainer._apply_edits


def _apply_edits(self, samples):
    apply_edits(self, samples)
    with open({record!r}, "a") as out:
        for sample in samples:
            if _edited(sample):
                ids = sample.response_token_ids
                out.write(json.dumps({{"text": sample.messages[-1]["content"], "ids": ids[0] if ids and
                                      isinstance(ids[0], list) else ids,
                                      "template": self.template.template_meta.template_type}}) + "\\n")


EditGRPOTrainer._apply_edits = _apply_edits
'''


def _swift(subcommand, model, out, args, env=None, plugin=None):
    from swift_plugins.editgrpo.tiny.swift_run import PLUGIN, run, swift_command

    argv, environment = swift_command(subcommand, model, out, args, env=env, plugin=plugin or PLUGIN)
    for inherited in ("IMAGE_MAX_TOKEN_NUM", "IMAGE_MIN_TOKEN_NUM"):  # written by in-process swift loads
        environment.pop(inherited, None)
    result = run(argv, environment)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-5000:]
    return result


def _checkpoint(output_dir):
    from swift_plugins.editgrpo.tiny.swift_run import run_dir

    (checkpoint,) = sorted(run_dir(output_dir).glob("checkpoint-*"))
    return checkpoint


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_sft_rlhf_infer_on_the_familys_tiny_model(name, tiny_models, tmp_path):
    """`swift sft` (2 steps) -> `swift rlhf` with the plugin (EditGRPO, 2 steps) -> `swift infer`, all with the
    family's CXR template: edited rows in completions.jsonl, whose token ids are the edited text + the end token."""
    from transformers import AutoTokenizer

    from _edit_oracle import expected_completion
    from datasets_registry.jsonl import read_jsonl
    from swift_plugins.editgrpo.tiny.swift_run import completion_rows, grpo_args, logged_steps, write_iu_dataset

    family = FAMILIES[name]
    model = tiny_models(name)
    tokenizer = AutoTokenizer.from_pretrained(model)
    dataset = write_iu_dataset(tmp_path / "data", PROMPTS * STEPS)
    env = {"MAX_PIXELS": str(family.same_budget(56 * 56))}  # 4 visual tokens per view on every grid
    save = ("--save_strategy", "steps", "--save_steps", str(STEPS), "--save_only_model", "true")

    _swift("sft", model, tmp_path / "sft", [
        "--model_type", family.model_type, "--template", family.cxr_template, "--dataset", str(dataset),
        "--tuner_type", "full", "--torch_dtype", "float32", "--max_steps", str(STEPS),
        "--per_device_train_batch_size", "2", "--max_length", "512", "--dataset_num_proc", "1",
        "--split_dataset_ratio", "0", "--check_model", "false", "--dataloader_num_workers", "0",
        "--report_to", "none", "--logging_steps", "1", *save], env=env)
    sft = _checkpoint(tmp_path / "sft")
    assert json.loads((sft / "args.json").read_text())["model_type"] == family.model_type  # rlhf/infer read it

    record = tmp_path / "edits.jsonl"
    recorder = tmp_path / "recorder.py"
    from swift_plugins.editgrpo import REPO_ROOT

    recorder.write_text(RECORDER.format(root=str(REPO_ROOT), record=str(record)))
    args = grpo_args(dataset, G, PROMPTS, MAX_NEW, STEPS, template=family.cxr_template) + list(save)
    _swift("rlhf", sft, tmp_path / "rl", args, env=env, plugin=recorder)
    rows, metrics = completion_rows(tmp_path / "rl"), logged_steps(tmp_path / "rl")
    assert len(rows) == STEPS * PROMPTS * G and len(metrics) == STEPS
    per_step = PROMPTS * G
    edited = [(i, r) for i, r in enumerate(rows) if r["editgrpo_edited"]]
    assert edited, "no rollout was edited"
    prefix = family.response_prefix  # Qwen3.5: every rollout text starts with the empty thinking block
    assert all(r["completion"].startswith(prefix) for r in rows)
    for index, row in edited:
        step_rows = rows[index // per_step * per_step:(index // per_step + 1) * per_step]
        source = step_rows[row["editgrpo_source"]]["completion"].removeprefix(prefix)
        assert row["completion"] == prefix + expected_completion(source, row["editgrpo_ops"], tokenizer, MAX_NEW)
        assert "<think>" not in row["completion"].removeprefix(prefix)  # the block is not edited as report text
    recorded = list(read_jsonl(record))
    assert sorted(r["text"] for r in recorded) == sorted(r["completion"] for _, r in edited)
    end_id = tokenizer.convert_tokens_to_ids(family.end_token)
    reports = [(r["text"].removeprefix(prefix), r["ids"]) for r in recorded]
    whole = [(text, ids) for text, ids in reports if len(tokenizer.encode(text, add_special_tokens=False)) < MAX_NEW]
    assert whole, "every edited report was cut at the completion budget"
    assert all(r["template"] == family.cxr_template for r in recorded)
    for text, ids in reports:  # the report's ids only: swift adds (and masks) the prefix ids when it encodes the row
        assert ids == (tokenizer.encode(text, add_special_tokens=False) + [end_id])[:MAX_NEW]
    for text, ids in whole:
        assert tokenizer.decode(ids) == text + family.end_token

    result_path = tmp_path / "infer.jsonl"
    _swift("infer", _checkpoint(tmp_path / "rl"), None, [
        "--template", family.cxr_template, "--val_dataset", str(dataset), "--max_new_tokens", "8",
        "--result_path", str(result_path)], env=env)
    results = list(read_jsonl(result_path))
    assert len(results) == PROMPTS * STEPS and all(isinstance(r["response"], str) for r in results)
    assert all(r["messages"][0]["role"] == "user" for r in results)  # the CXR template adds no system turn
    assert all(r["response"].startswith(prefix) for r in results)  # swift's responses carry the prefix too


def test_rewards_and_evaluation_read_the_report_without_qwen3_5s_thinking_block():
    from rewards.orms import report_text
    from swift_plugins.editgrpo.evaluation.results import parse_row
    from templates.families import FAMILIES, strip_response_prefix

    prefix = FAMILIES["qwen3_5"].response_prefix
    report = "Heart size is normal. No effusion."
    assert prefix and strip_response_prefix(prefix + report) == report == strip_response_prefix(report)
    assert report_text(prefix + report) == report == report_text({"role": "assistant", "content": prefix + report})
    assert parse_row({"response": prefix + report, "solution": report, "study_id": "s1"}, 0)[1] == report
    assert strip_response_prefix("<think>\n" + report) == "<think>\n" + report  # only the whole block
