"""Converted rows through real swift: the `qwen2_5_vl_cxr` template, the registered `--dataset` names,
encoding with the tiny Qwen2.5-VL processor, and one `swift sft` step."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from datasets_registry import ConversionError, convert
from datasets_registry.registration import DATA_DIR_ENV, register_datasets
from templates import CXR_TEMPLATE, CXR_TEMPLATES, register_templates

from datasets_registry.iu_xray import BUNDLED_DIR as IU_XRAY_DIR
from swift_plugins.editgrpo import REPO_ROOT
from test_datasets_mimic_cxr import Study, _report, write_mimic

MAX_PIXELS = "12544"


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory, iu_reports) -> Path:
    """$EDITGRPO_DATA_DIR with the real IU-XRay CSVs converted (placeholder images) and a MIMIC copy with priors."""
    root = tmp_path_factory.mktemp("editgrpo_data")
    convert("iu-xray", IU_XRAY_DIR, root / "iu_xray", placeholder_images=True, show_progress=False)
    f = [row for row in iu_reports if row["findings"].strip()]
    studies = [Study("10000032", f"5000000{i}", "train", f"2112010{i}", "0", views, _report(f[i]["findings"], "Normal."))
               for i, views in enumerate([["PA", "LATERAL"], ["AP"], ["PA", "LATERAL", "LL", "AP"], ["PA"]], start=1)]
    write_mimic(root / "mimic_src", studies)
    convert("mimic-cxr", root / "mimic_src", root / "mimic_cxr", show_progress=False)
    return root


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_registration_is_idempotent_and_makes_the_template():
    from swift.template import TEMPLATE_MAPPING
    from swift.template.templates.qwen import Qwen2_5VLTemplate

    assert register_templates() == list(CXR_TEMPLATES) == register_templates() and CXR_TEMPLATE in CXR_TEMPLATES
    meta = TEMPLATE_MAPPING[CXR_TEMPLATE]
    assert issubclass(meta.template_cls, Qwen2_5VLTemplate) and meta.default_system is None
    names = register_datasets()
    assert register_datasets() == names
    assert set(names) == {"mimic_cxr_editgrpo", "rexgradient_editgrpo", "iu_xray_editgrpo",
                          "padchest_gr_editgrpo", "cxr_synthetic_editgrpo"}


def test_dataset_names_load_the_split_files(data_dir, monkeypatch):
    from swift.dataset import load_dataset

    register_datasets()
    monkeypatch.setenv(DATA_DIR_ENV, str(data_dir))
    for subset, split in (("", "train"), (":test", "test"), (":validation", "validation")):
        dataset, _ = load_dataset(f"iu_xray_editgrpo{subset}", shuffle=False, remove_unused_columns=False)
        rows = _rows(data_dir / "iu_xray" / f"{split}.jsonl")
        assert len(dataset) == len(rows)
        assert sorted(dataset["study_id"]) == sorted(row["study_id"] for row in rows)
        assert sorted(dataset["solution"]) == sorted(row["solution"] for row in rows)
    direct, _ = load_dataset(str(data_dir / "mimic_cxr" / "train.jsonl"), shuffle=False, remove_unused_columns=False)
    assert direct["prior_study_id"] == [row["prior_study_id"] for row in _rows(data_dir / "mimic_cxr" / "train.jsonl")]
    both, _ = load_dataset("iu_xray_editgrpo:train/validation", shuffle=False)
    assert len(both) == sum(len(_rows(data_dir / "iu_xray" / f"{s}.jsonl")) for s in ("train", "validation"))
    with pytest.raises(ConversionError, match="padchest_gr/train.jsonl not found"):
        load_dataset("padchest_gr_editgrpo", shuffle=False)
    with pytest.raises(ConversionError, match="unknown subset"):
        load_dataset("iu_xray_editgrpo:dev-set", shuffle=False)


@pytest.mark.parametrize("dataset_dir", ["iu_xray", "mimic_cxr"])
def test_rows_encode_with_the_right_number_of_image_tokens(data_dir, dataset_dir, tiny_model_dir, monkeypatch):
    from PIL import Image
    from qwen_vl_utils import smart_resize
    from swift.model import get_model_processor
    from swift.template import get_template

    register_templates()
    monkeypatch.setenv("MAX_PIXELS", MAX_PIXELS)
    _, processor = get_model_processor(str(tiny_model_dir), load_model=False)
    template = get_template(processor, template_type=CXR_TEMPLATE)
    template.set_mode("train")
    image_pad, vision_start = processor.tokenizer.convert_tokens_to_ids(["<|image_pad|>", "<|vision_start|>"])
    rows = [row for split in ("train", "test") for row in _rows(data_dir / dataset_dir / f"{split}.jsonl")][:12]
    sizes = {len(row["images"]) for row in rows}
    assert sizes == {2} if dataset_dir == "iu_xray" else sizes >= {2, 3}  # IU-XRay: two views; MIMIC: with priors
    for row in rows:
        encoded = template.encode({key: row[key] for key in ("messages", "images")})
        ids = encoded["input_ids"]
        expected = 0
        for path in row["images"]:
            width, height = Image.open(path).size
            h, w = smart_resize(height, width, factor=28, min_pixels=4 * 28 * 28, max_pixels=int(MAX_PIXELS))
            expected += (h // 28) * (w // 28)  # 14-pixel patches, 2x2 merged
        assert ids.count(image_pad) == expected == int(encoded["image_grid_thw"].prod(dim=1).sum()) // 4
        assert ids.count(vision_start) == len(row["images"])
        target = [t for t, label in zip(ids, encoded["labels"]) if label != -100]
        assert processor.tokenizer.decode(target).startswith(row["solution"])
        assert image_pad not in target


@pytest.mark.slow
def test_converted_file_trains_one_sft_step(data_dir, tiny_model_dir, tmp_path):
    """`swift sft --dataset iu_xray_editgrpo --template qwen2_5_vl_cxr` through the project's plugin file."""
    plugin = REPO_ROOT / "swift_plugins" / "editgrpo" / "plugin.py"
    out = tmp_path / "sft"
    env = {**os.environ, DATA_DIR_ENV: str(data_dir), "MAX_PIXELS": MAX_PIXELS, "CUDA_VISIBLE_DEVICES": "",
           "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    command = [sys.executable, "-m", "swift.cli.main", "sft", "--model", str(tiny_model_dir),
               "--template", CXR_TEMPLATE, "--dataset", "iu_xray_editgrpo#8", "--external_plugins", str(plugin),
               "--check_model", "false", "--tuner_type", "full", "--torch_dtype", "float32", "--max_steps", "1",
               "--per_device_train_batch_size", "2", "--gradient_accumulation_steps", "1", "--logging_steps", "1",
               "--save_strategy", "no", "--report_to", "none", "--dataloader_num_workers", "0",
               "--dataset_num_proc", "1", "--split_dataset_ratio", "0", "--output_dir", str(out)]
    result = subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-4000:]
    logs = [json.loads(line) for path in out.rglob("logging.jsonl") for line in path.read_text().splitlines()]
    losses = [entry["loss"] for entry in logs if "loss" in entry]
    assert losses and all(loss == loss and loss > 0 for loss in losses)  # a real, finite loss


@pytest.mark.parametrize("dataset_dir", ["iu_xray", "mimic_cxr"])
def test_teacher_view_keeps_the_images_and_adds_the_gold(data_dir, dataset_dir, tiny_model_dir, monkeypatch):
    """A converted row through swift's own OPSD path (`OnPolicySample.build_teacher_view`, the teacher
    template dict, template encoding): the teacher sees the student's images, tag for tag, plus the gold."""
    from swift.model import get_model_processor
    from swift.rl_core.data import OnPolicySample
    from swift.template import get_template

    register_templates()
    monkeypatch.setenv("MAX_PIXELS", MAX_PIXELS)
    _, processor = get_model_processor(str(tiny_model_dir), load_model=False)
    template = get_template(processor, template_type=CXR_TEMPLATE)
    template.set_mode("train")
    tokenizer = processor.tokenizer
    image_pad, vision_start = tokenizer.convert_tokens_to_ids(["<|image_pad|>", "<|vision_start|>"])
    rows = [row for split in ("train", "test") for row in _rows(data_dir / dataset_dir / f"{split}.jsonl")][:6]
    assert {len(row["images"]) for row in rows} >= ({2} if dataset_dir == "iu_xray" else {2, 3})
    for row in rows:
        # a rollout: swift's sample of the row with the policy's answer as last message
        sample = OnPolicySample.from_row({**row, "messages": [*row["messages"][:1],
                                                              {"role": "assistant", "content": "Lungs are clear."}]})
        assert sample.build_teacher_view()
        teacher = sample.to_teacher_template_dict()
        assert teacher["messages"][0]["content"] == row["teacher_prompt"] and teacher["images"] == row["images"]
        assert teacher["messages"][-1]["content"] == "Lungs are clear."
        student_ids = template.encode(sample.to_template_dict())["input_ids"]
        teacher_ids = template.encode(teacher)["input_ids"]
        assert teacher_ids.count(image_pad) == student_ids.count(image_pad) > 0
        assert teacher_ids.count(vision_start) == student_ids.count(vision_start) == len(row["images"])
        text = tokenizer.decode(teacher_ids)
        assert row["solution"] in text and row["solution"] not in tokenizer.decode(student_ids)
        assert text.endswith("<|im_start|>assistant\nLungs are clear.")  # the shared response, last
