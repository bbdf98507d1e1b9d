"""The synthetic demo task: images encode the findings, reports state them, output is reproducible."""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from datasets_registry import synthetic as syn
from templates.report import split_sentences
from templates.prompt import IMAGE_TAG

N_STUDIES = 240
S = syn.IMAGE_SIZE


@pytest.fixture(scope="module")
def studies() -> list[tuple[syn.SyntheticStudy, np.ndarray, np.ndarray]]:
    out = []
    for study, images in syn.iter_studies(seed=3, split="train", n=N_STUDIES):
        out.append((study, np.asarray(images["PA"], dtype=float), np.asarray(images["LATERAL"], dtype=float)))
    return out


def _region(pixels: np.ndarray, x0: float, x1: float, y0: float, y1: float) -> float:
    """Mean intensity of a box given in fractions of the image size."""
    return float(pixels[int(y0 * S) : int(y1 * S), int(x0 * S) : int(x1 * S)].mean())


def _heart_width(frontal: np.ndarray) -> int:
    """Widest bright run through the midline in the heart band (the cardiac silhouette)."""
    widest = 0
    for y in range(int(0.6 * S), int(0.68 * S)):
        bright = frontal[y - 1 : y + 2].mean(axis=0) > 155
        left = right = S // 2
        while left > 0 and bright[left - 1]:
            left -= 1
        while right < S - 1 and bright[right + 1]:
            right += 1
        widest = max(widest, right - left + 1)
    return widest


def test_heart_width_separates_cardiomegaly(studies):
    normal = [_heart_width(pa) for s, pa, _ in studies if not s.findings.cardiomegaly]
    enlarged = [_heart_width(pa) for s, pa, _ in studies if s.findings.cardiomegaly]
    assert len(normal) > 20 and len(enlarged) > 20
    assert max(normal) < min(enlarged)
    # cardiothoracic ratio: thorax is ~0.83 of the image wide
    assert np.mean(enlarged) / (0.83 * S) > 0.55 > np.mean(normal) / (0.83 * S)


@pytest.mark.parametrize("side, x0, x1", [("right", 0.08, 0.2), ("left", 0.8, 0.92)])
def test_effusion_fills_the_costophrenic_angle_on_its_side(studies, side, x0, x1):
    def base(pa):
        return _region(pa, x0, x1, 0.66, 0.76)

    with_fluid = [base(pa) for s, pa, _ in studies if s.findings.pleural_effusion in (side, "bilateral")]
    clear = [base(pa) for s, pa, _ in studies if not any(s.findings.present().values())]
    assert with_fluid and clear
    assert min(with_fluid) > max(clear)


@pytest.mark.parametrize("side, x0, x1", [("right", 0.2, 0.33), ("left", 0.67, 0.8)])
def test_pneumothorax_darkens_the_apex_without_markings(studies, side, x0, x1):
    def apex(pa):
        return pa[int(0.22 * S) : int(0.32 * S), int(x0 * S) : int(x1 * S)]

    collapsed = [apex(pa) for s, pa, _ in studies if s.findings.pneumothorax == side]
    normal = [apex(pa) for s, pa, _ in studies if not any(s.findings.present().values())]
    assert collapsed and normal
    assert max(a.mean() for a in collapsed) < min(a.mean() for a in normal)


def test_support_devices_are_metal_bright(studies):
    def metal_pixels(pa):
        return int((pa > 215).sum())

    with_device = [metal_pixels(pa) for s, pa, _ in studies if s.findings.support_device]
    without = [metal_pixels(pa) for s, pa, _ in studies if not s.findings.support_device]
    assert with_device and min(with_device) > 10
    assert max(without) == 0


def test_consolidation_raises_density_of_its_lobe(studies):
    boxes = {  # lung-centre columns, upper / lower zone rows
        "right upper lobe": (0.15, 0.35, 0.25, 0.4),
        "right lower lobe": (0.15, 0.35, 0.55, 0.7),
        "left upper lobe": (0.65, 0.85, 0.25, 0.4),
        "left lower lobe": (0.65, 0.85, 0.55, 0.7),
    }
    normal = [pa for s, pa, _ in studies if not any(s.findings.present().values())]
    for lobe, box in boxes.items():
        consolidated = [pa for s, pa, _ in studies if s.findings.consolidation == lobe]
        assert consolidated, lobe
        gap = np.mean([_region(pa, *box) for pa in consolidated]) - np.mean([_region(pa, *box) for pa in normal])
        assert gap > 25, (lobe, gap)


def test_lateral_view_shows_the_heart_too(studies):
    def anterior_density(lateral):
        return _region(lateral, 0.52, 0.62, 0.6, 0.66)  # behind a normal heart

    normal = np.mean([anterior_density(lat) for s, _, lat in studies if not s.findings.cardiomegaly])
    enlarged = np.mean([anterior_density(lat) for s, _, lat in studies if s.findings.cardiomegaly])
    assert enlarged > normal + 10


# ----------------------------------------------------------------------------- reports

# How a reader recognises each finding in a sentence, and what makes the statement positive.
_MENTION = {
    "cardiomegaly": r"heart|cardiac|cardiomegaly",
    "edema": r"edema",
    "consolidation": r"consolidation",
    "atelectasis": r"atelectasis",
    "pleural_effusion": r"effusion",
    "pneumothorax": r"pneumothorax",
    "support_device": r"tube|catheter|pacemaker|lines|devices",
}
_NEGATED = re.compile(r"\b(no|without|free of|normal)\b", re.I)


def _statements(report: str) -> dict[str, list[bool]]:
    """finding -> polarity (True = present) of every sentence that mentions it."""
    found: dict[str, list[bool]] = {name: [] for name in _MENTION}
    for sentence in split_sentences(report):
        for name, pattern in _MENTION.items():
            if re.search(pattern, sentence, re.I):
                found[name].append(not _NEGATED.search(sentence))
    return found


def test_reports_state_every_finding_with_its_polarity(studies):
    for study, _, _ in studies:
        truth = study.findings.present()
        for name, polarities in _statements(study.report).items():
            assert polarities, (name, study.report)
            assert all(p == truth[name] for p in polarities), (name, truth[name], study.report)


def test_reports_name_the_side_and_lobe(studies):
    for study, _, _ in studies:
        f = study.findings
        if f.consolidation:
            assert f.consolidation in study.report
        if f.pneumothorax:
            assert f.pneumothorax in study.report.lower()
        if f.pleural_effusion and f.pleural_effusion != "bilateral":
            assert f.pleural_effusion in study.report.lower()


def test_sentence_records_match_the_split_report(studies):
    for study, _, _ in studies:
        assert len(study.sentences) == len(split_sentences(study.report))


def test_reports_are_varied_and_use_real_radiology_phrasing(studies, iu_findings):
    reports = {s.report for s, _, _ in studies}
    assert len(reports) > N_STUDIES * 0.8
    real = {sentence for text in iu_findings for sentence in split_sentences(text)}
    sentences = [sentence for s, _, _ in studies for sentence in split_sentences(s.report)]
    verbatim = sum(sentence in real for sentence in sentences) / len(sentences)
    assert verbatim > 0.4  # the common negative statements are IU-XRay's own words


def test_every_finding_occurs_both_ways(studies):
    for name in syn.FINDINGS:
        values = [s.findings.present()[name] for s, _, _ in studies]
        assert 0.05 < np.mean(values) < 0.6, name


# ----------------------------------------------------------------------------- files

CONTRACT_KEYS = {
    "messages", "images", "solution", "study_id", "subject_id", "split", "views",
    "prior_study_id", "indication", "technique", "comparison", "teacher_prompt",
}


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_generate_writes_the_sample_format(tmp_path):
    paths = syn.generate(tmp_path / "data", n_train=6, n_test=3, seed=1)
    train, test = _rows(paths.train), _rows(paths.test)
    assert len(train) == 6 and len(test) == 3
    for row in train + test:
        assert set(row) == CONTRACT_KEYS
        user, assistant = row["messages"]
        assert user["content"].count(IMAGE_TAG) == len(row["images"]) == 2
        assert assistant == {"role": "assistant", "content": row["solution"]}
        assert row["teacher_prompt"].startswith(user["content"] + "\n") and row["solution"] in row["teacher_prompt"]
        assert row["views"] == ["PA", "LATERAL"]
        assert all(Path(p).is_absolute() and Path(p).is_file() for p in row["images"])
    assert {r["split"] for r in train} == {"train"} and {r["split"] for r in test} == {"test"}
    assert not {r["study_id"] for r in train} & {r["study_id"] for r in test}
    labels = _rows(paths.labels)
    assert [l["study_id"] for l in labels] == [r["study_id"] for r in train + test]
    assert not list((tmp_path / "data").glob("*.tmp"))


def _portable(path: Path, root: Path) -> str:
    return path.read_text().replace(str(root.resolve()), "<root>")


def test_generation_is_deterministic_and_independent_of_size(tmp_path):
    a = syn.generate(tmp_path / "a", n_train=4, n_test=2, seed=7)
    b = syn.generate(tmp_path / "b", n_train=4, n_test=2, seed=7)
    assert _portable(a.train, tmp_path / "a") == _portable(b.train, tmp_path / "b")
    for image in (tmp_path / "a" / "images").iterdir():
        assert image.read_bytes() == (tmp_path / "b" / "images" / image.name).read_bytes()
    bigger = syn.generate(tmp_path / "c", n_train=6, n_test=2, seed=7)
    assert _portable(bigger.train, tmp_path / "c").splitlines()[:4] == _portable(a.train, tmp_path / "a").splitlines()
    other = syn.generate(tmp_path / "d", n_train=4, n_test=2, seed=8)
    assert _rows(other.train)[0]["solution"] != _rows(a.train)[0]["solution"] or \
        _rows(other.train)[1]["solution"] != _rows(a.train)[1]["solution"]


def test_report_corpus_is_the_training_text():
    corpus = syn.report_corpus(5, seed=2)
    assert corpus == [s.report for s, _ in syn.iter_studies(2, "train", 5)]


def test_regenerating_into_an_existing_dir_replaces_it(tmp_path):
    syn.generate(tmp_path, n_train=5, n_test=2, seed=0)
    paths = syn.generate(tmp_path, n_train=2, n_test=1, seed=0)
    assert len(_rows(paths.train)) == 2 and len(_rows(paths.test)) == 1


def test_bad_sizes(tmp_path):
    with pytest.raises(ValueError):
        syn.generate(tmp_path, n_train=-1, n_test=2)
    paths = syn.generate(tmp_path, n_train=0, n_test=0)
    assert paths.train.read_text() == "" and paths.test.read_text() == ""
