"""Fuzzing the ORMs and `editgrpo score` (rules backend) over arbitrary input: control characters, lone
surrogates, huge texts, swift's message shapes and values that are not text. Each input gets one finite value,
in the metric's range, at its own position (equal to scoring that pair alone)."""
from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from datasets_registry.iu_xray import read_report_rows

FINDINGS = [row["findings"] for row in read_report_rows() if row["findings"].strip()][:300]
VOCABULARY = sorted({word for text in FINDINGS[:100] for word in text.split()})
ORM_RANGES = {"editgrpo_radgraph": 1.0, "editgrpo_chexbert": 1.0, "editgrpo_ratescore": 1.0, "editgrpo_clinical": 3.0}
SCORE_KEYS = {"chexbert_micro_f1_14": 1.0, "radgraph_partial_f1": 1.0, "ratescore": 1.0, "clinical": 3.0}
# EDITGRPO_HYPOTHESIS_EXAMPLES=400 for a longer search
SETTINGS = settings(max_examples=int(os.environ.get("EDITGRPO_HYPOTHESIS_EXAMPLES", "50")), deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])

texts = st.one_of(
    st.text(max_size=200),  # any code point but surrogates, control characters included
    st.text(st.characters(categories=["Cc", "Cs", "Zs", "Po", "Lo"]), max_size=60),  # control, lone surrogates, CJK/Arabic
    st.lists(st.sampled_from(VOCABULARY), max_size=60).map(" ".join),  # real report words in random order
    st.sampled_from(FINDINGS),
    st.tuples(st.sampled_from(FINDINGS), st.text(st.characters(categories=["Cc", "Cs"]), max_size=5)).map("".join),
)
# (what swift passes, the report text it holds or None when it holds none)
completions = st.one_of(
    texts.map(lambda t: (t, t)),
    texts.map(lambda t: ({"role": "assistant", "content": t}, t)),
    texts.map(lambda t: ([{"role": "user", "content": "<image>Describe."}, {"role": "assistant", "content": t}], t)),
    texts.map(lambda t: ({"content": [{"type": "image", "image": "x.png"}, {"type": "text", "text": t}]}, t)),
    st.one_of(st.integers(), st.booleans(), st.floats(), st.none(), st.binary(max_size=8),
              st.dictionaries(st.sampled_from(["content", "role", "text"]), st.integers() | st.none(), max_size=2),
              st.lists(st.integers() | st.text(max_size=5), max_size=3),
              texts.map(lambda t: [[t]]), texts.map(lambda t: {"content": {"text": t}})).map(lambda v: (v, None)),
)
solutions = st.one_of(st.sampled_from(FINDINGS), texts, st.none())
HUGE = [" ".join(FINDINGS)[:100_000], "x" * 100_000, "\x00\x01\x1b\x7f" * 25_000, "\ud800\udfff" * 50_000,
        "心脏大小正常。" * 14_000, ("No pneumothorax. " + "\u200b" * 50) * 1_500]


@pytest.fixture(scope="module")
def orms_by_name():
    from rewards import orms

    with pytest.MonkeyPatch.context() as patch:  # the ORMs read their settings when built
        patch.setenv("EDITGRPO_REWARD_BACKEND", "rules")
        patch.setenv("EDITGRPO_REWARD_CACHE", "64")  # scorers of their own (other tests count cache hits), evicting
        return {name: cls() for name, cls in orms.ORMS.items()}


def check_values(values, n: int, top: float) -> None:
    assert len(values) == n
    assert all(isinstance(v, float) and math.isfinite(v) and 0.0 <= v <= top for v in values), values


@pytest.mark.parametrize("name", ORM_RANGES)
@SETTINGS
@given(batch=st.lists(st.tuples(completions, solutions), min_size=1, max_size=6))
def test_orms_one_finite_value_per_completion(orms_by_name, name, batch):
    orm = orms_by_name[name]
    values = orm([c for (c, _), _ in batch], solution=[s for _, s in batch])
    check_values(values, len(batch), ORM_RANGES[name])
    for value, ((_, text), solution) in zip(values, batch):
        alone = 0.0 if text is None else orm([text], solution=[solution])[0]
        assert value == pytest.approx(alone, abs=1e-9)  # aligned: the pair's own value, wherever it sits


@pytest.mark.parametrize("text", HUGE, ids=["reports", "one-word", "control", "surrogates", "cjk", "zero-width"])
def test_orms_on_huge_inputs(orms_by_name, text):
    values = orms_by_name["editgrpo_clinical"]([text, FINDINGS[0]], solution=[FINDINGS[0], text])
    check_values(values, 2, 3.0)


line_texts = texts.map(lambda t: t.encode("utf-8", "replace").decode("utf-8").replace("\n", " "))  # what a file holds


@SETTINGS
@given(pairs=st.lists(st.tuples(line_texts, line_texts), min_size=1, max_size=6))
def test_score_command_one_row_per_line(pairs):
    import rewards
    from swift_plugins.editgrpo.cli import main

    with tempfile.TemporaryDirectory() as tmp:
        hyps, refs, out = Path(tmp, "h.txt"), Path(tmp, "r.txt"), Path(tmp, "scores.jsonl")
        hyps.write_text("".join(h + "\n" for h, _ in pairs), encoding="utf-8")
        refs.write_text("".join(r + "\n" for _, r in pairs), encoding="utf-8")
        assert main(["score", "--hyps", str(hyps), "--refs", str(refs), "--out", str(out), "--backend", "rules"]) == 0
        rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [row["index"] for row in rows] == list(range(len(pairs)))
    for key, top in SCORE_KEYS.items():
        check_values([row[key] for row in rows], len(pairs), top)
    clinical = rewards.ClinicalScorer(rewards.build_scorers(backend="rules"))
    for row, (h, r) in zip(rows, pairs):
        as_read = [t.removesuffix("\r").replace("\\n", "\n") for t in (h, r)]  # the command's line format
        assert row["clinical"] == pytest.approx(clinical.score([as_read[0]], [as_read[1]]).values[0], abs=1e-9)


@pytest.mark.parametrize("raw", [b"\xed\xa0\x80 effusion\n", "No effusion.\n".encode("utf-16"), b"ok\n\xff\n"],
                         ids=["encoded-surrogate", "utf-16", "stray-byte"])
def test_score_command_refuses_files_that_are_not_utf8(tmp_path, capsys, raw):
    """A lone surrogate cannot be written as UTF-8 (its bytes are invalid UTF-8): such a file is refused, not scored."""
    from swift_plugins.editgrpo.cli import main

    with pytest.raises(UnicodeEncodeError):
        "\ud800".encode("utf-8")
    (tmp_path / "h.txt").write_bytes(raw)
    (tmp_path / "r.txt").write_text("No effusion.\n", encoding="utf-8")
    out = tmp_path / "scores.jsonl"
    assert main(["score", "--hyps", str(tmp_path / "h.txt"), "--refs", str(tmp_path / "r.txt"), "--out", str(out),
                 "--backend", "rules"]) == 1
    assert "not valid UTF-8" in capsys.readouterr().err and not out.exists()


AWKWARD = ["No effusion \ud800 heart \udfff normal.", "\x00\x1b[31m effusion\x7f", "心脏大小正常。" * 20, "", "...",
           " ".join(FINDINGS)[:20_000], [{"role": "assistant", "content": [{"type": "text", "text": "No \udc80pneumothorax."}]}], 7]


@pytest.mark.usefixtures("one_torch_thread")
def test_real_orms_on_awkward_text(scorer_models_dir, monkeypatch):
    """The model-backed ORMs (tiny random models, real loading and tokenizers) on what the fuzzing found: lone
    surrogates made the Hugging Face tokenizers raise TypeError."""
    from rewards import orms

    for name, value in (("EDITGRPO_REWARD_BACKEND", "real"), ("EDITGRPO_MODELS_DIR", str(scorer_models_dir)),
                        ("EDITGRPO_DEVICE", "cpu"), ("EDITGRPO_BATCH_SIZE", "4")):
        monkeypatch.setenv(name, value)
    values = orms.EditGRPOClinical()(AWKWARD, solution=[FINDINGS[0]] * (len(AWKWARD) - 1) + ["\ud800 No effusion."])
    check_values(values, len(AWKWARD), 3.0)
    assert values[-1] == 0.0
