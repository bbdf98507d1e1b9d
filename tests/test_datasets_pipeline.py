"""The shared conversion steps on plain records: view order, priors, duplicates, options."""
from __future__ import annotations

from pathlib import Path

import pytest

from datasets_registry.pipeline import ConvertOptions, convert_studies, drop_duplicates, link_priors
from datasets_registry.records import ConversionError, LoadResult, SourceImage, SourceStudy, normalize_view, sorted_images


def _images(*views: str) -> list[SourceImage]:
    return [SourceImage(Path(f"/data/{i}_{view or 'none'}.png"), normalize_view(view)) for i, view in enumerate(views)]


def _study(study_id: str, subject: str, order, n_images: int = 1, findings: str | None = "Clear lungs.") -> SourceStudy:
    return SourceStudy(study_id, subject, "train", _images(*["PA"] * n_images), findings, order=order)


def test_view_labels_are_normalised():
    assert [normalize_view(v) for v in ("Frontal", "postero_anterior", "ap", "Lateral", "LAT", "", None, "nan")] == [
        "FRONTAL", "PA", "AP", "LATERAL", "LATERAL", "UNKNOWN", "UNKNOWN", "UNKNOWN"]


def test_frontal_first_then_lateral_then_the_next_of_each():
    images = _images("SWIMMERS", "XTABLE LATERAL", "", "AP AXIAL", "LL", "AP", "PA")
    assert [i.view for i in sorted_images(images)] == ["PA", "LL", "SWIMMERS", "UNKNOWN", "AP", "XTABLE LATERAL", "AP AXIAL"]
    assert sorted_images(list(reversed(images))) == sorted_images(images)  # independent of input order


def test_prior_is_the_latest_strictly_earlier_study_with_images():
    studies = [_study("a", "p1", (20200101, 80000.0)), _study("b", "p1", (20200101, 80000.0)),
               _study("c", "p1", (20200102, 0.0), findings=None), _study("d", "p1", (20210101, 0.0)),
               _study("e", "p1", (20220101, 0.0), n_images=0), _study("f", "p1", (20230101, 0.0)),
               _study("g", "p2", (20000101, 0.0)), _study("h", "p3", None)]
    priors = {key: value.study_id for key, value in link_priors(studies).items()}
    # a/b share a date-time: neither is the other's prior (ties: the later id); c (no findings) still
    # serves as a prior; e has no images, so it is no prior (and gets none: it is skipped anyway).
    assert priors == {"c": "b", "d": "c", "f": "d"}
    explicit = _study("x", "p2", (20010101, 0.0))
    explicit.explicit_prior = _study("named", "p2", None)
    assert link_priors([*studies, explicit])["x"].study_id == "named"


def test_duplicates_are_all_dropped():
    kept, dropped = drop_duplicates([_study("a", "p", None), _study("b", "p", None), _study("a", "q", None)])
    assert [s.study_id for s in kept] == ["b"] and [s.subject_id for s in dropped] == ["p", "q"]


def test_max_images_must_be_positive(tmp_path):
    with pytest.raises(ConversionError, match="max_images"):
        convert_studies("x", LoadResult(), tmp_path, tmp_path / "out", ConvertOptions(max_images=0))
