"""The ORMs through ms-swift's own reward path (registry lookup, `compute_rewards_per_func`)."""
from __future__ import annotations

import math

import pytest
import torch


@pytest.fixture
def rules_env(monkeypatch):
    """The rules backend, and fresh process-wide scorers (earlier tests' calls must not pre-fill their caches)."""
    import rewards.orms

    monkeypatch.setenv("EDITGRPO_REWARD_BACKEND", "rules")
    monkeypatch.setattr(rewards.orms, "_scorers", {})


def swift_reward_funcs(names):
    """As GRPOTrainer._prepare_rewards: look the names up in swift's `orms` and instantiate with args."""
    from swift.rewards import orms

    from rewards.orms import register_orms

    register_orms()
    return [orms[name](args=None) for name in names]


def samples(completions, solutions):
    from swift.rl_core.data import GRPOSample

    return [GRPOSample(messages=[{"role": "user", "content": "<image>Describe the findings."}, {"role": "assistant", "content": c}],
                       extra={"solution": s}, prompt_id=f"p{i // 5}") for i, (c, s) in enumerate(zip(completions, solutions))]


def test_swift_reward_path_with_bad_completions(rules_env, iu_findings):
    from swift.rl_core.grpo_algorithm import compute_rewards_per_func

    names = ["editgrpo_radgraph", "editgrpo_chexbert", "editgrpo_ratescore", "editgrpo_clinical"]
    funcs = swift_reward_funcs(names)
    refs = [iu_findings[10]] * 5 + [iu_findings[11]] * 5
    completions = [iu_findings[10], "", "ok", "Keine akuten Befunde.", " ".join(iu_findings[:400]),
                   iu_findings[11], iu_findings[12], iu_findings[11] + "<|im_end|>", "No acute disease.", iu_findings[10]]
    rewards = compute_rewards_per_func(samples(completions, refs), funcs, None, device=torch.device("cpu"))
    assert rewards.shape == (10, 4)
    assert torch.isfinite(rewards).all()
    torch.testing.assert_close(rewards[:, 3], rewards[:, :3].sum(dim=1))
    assert rewards[0, 3] == pytest.approx(3.0, abs=1e-6) and rewards[5, 3] == pytest.approx(3.0, abs=1e-6)
    assert rewards[7, 3] == pytest.approx(rewards[5, 3].item())  # EOS strings are not report text
    assert rewards[1, 3] < rewards[0, 3]
    clinical = funcs[3]
    assert set(clinical.last_components) == {"radgraph_partial_f1", "chexbert_micro_f1_14", "ratescore"}
    assert [type(f).__name__ for f in funcs] == ["EditGRPORadGraph", "EditGRPOCheXbert", "EditGRPORaTEScore", "EditGRPOClinical"]


def test_orm_without_solution_column_is_refused(rules_env):
    """Without gold reports every reward would be the same constant (zero advantages): stop with the column's name."""
    from rewards.orms import EditGRPOClinical

    with pytest.raises(ValueError, match="`solution` column"):
        EditGRPOClinical()(["No pneumothorax.", ""], trainer_state=None)
    values = EditGRPOClinical()(["No pneumothorax.", ""], solution=[None, "No pneumothorax."])  # a None gold is an empty report
    assert len(values) == 2 and all(math.isfinite(v) for v in values)


def test_orms_share_scorers_and_caches(rules_env, iu_findings):
    from rewards.orms import EditGRPOCheXbert, EditGRPOClinical, shared_scorers

    EditGRPOClinical()(iu_findings[:5], solution=[iu_findings[20]] * 5)
    scorer = shared_scorers()["chexbert"]
    hits = scorer.recent.hits
    EditGRPOCheXbert()(iu_findings[:5], solution=[iu_findings[20]] * 5)
    assert scorer.recent.hits >= hits + 5  # the second ORM found the rollouts annotated


def test_only_the_composite_reports_components(rules_env, iu_findings):
    from rewards.orms import EditGRPOCheXbert

    orm = EditGRPOCheXbert()
    orm(iu_findings[:2], solution=iu_findings[2:4])
    assert orm.last_components == {}


def test_orms_take_swift_message_shapes(rules_env, iu_findings):
    """A completion as a message, a message list (the assistant's reply) or multimodal parts is its text."""
    from rewards.orms import EditGRPOClinical

    report, prompt = iu_findings[30], "<image>Describe the findings. There is a large right pleural effusion."
    shapes = [report, {"role": "assistant", "content": report}, {"content": report},
              [{"role": "user", "content": prompt}, {"role": "assistant", "content": report}],
              [{"role": "user", "content": [{"type": "image", "image": "x.png"}, {"type": "text", "text": prompt}]},
               {"role": "assistant", "content": [{"type": "text", "text": report[:40]}, {"type": "text", "text": report[40:]}]}]]
    values = EditGRPOClinical()(shapes, solution=[report] * len(shapes))
    assert values == pytest.approx([values[0]] * len(shapes)) and values[0] == pytest.approx(3.0, abs=1e-6)


def test_non_text_completions_score_zero_and_are_logged_once(rules_env, iu_findings, monkeypatch, caplog):
    from rewards import orms

    monkeypatch.setattr(orms, "_logged_types", set(), raising=False)
    report, other = iu_findings[30], iu_findings[31]
    junk = [123, True, float("nan"), None, {"content": 5}, {"text": report}, [[report]], [{"content": report}],
            {"content": [{"type": "text", "text": 7}]}, {"content": [{"text": report}]}, {"role": "user", "content": report},
            [{"role": "user", "content": report}], b"No effusion."]
    completions = [report] + junk + [other]
    clinical = orms.EditGRPOClinical()
    with caplog.at_level("WARNING", logger="rewards.orms"):
        values = clinical(completions, solution=[report] * len(completions))
        clinical(completions, solution=[report] * len(completions))
    assert len(values) == len(completions) and all(math.isfinite(v) for v in values)
    assert values[1:-1] == [0.0] * len(junk)
    assert values[0] == pytest.approx(3.0, abs=1e-6)  # the text entries keep their own rewards, in order
    assert values[-1] == pytest.approx(orms.EditGRPOClinical()([other], solution=[report])[0])
    assert all(column[1:-1] == [0.0] * len(junk) for column in clinical.last_components.values())
    warnings = [r.getMessage() for r in caplog.records if r.name == "rewards.orms"]
    assert len(warnings) == 1 and "completion" in warnings[0]  # one line for the batch; the second call adds none
    for name in ("int", "bool", "float", "NoneType", "dict", "list", "bytes"):
        assert name in warnings[0]
    with caplog.at_level("WARNING", logger="rewards.orms"):
        assert orms.EditGRPOClinical()([report], solution=[42]) == [0.0]  # a gold that is not text: no reward either
    assert "solution entries of type int" in caplog.records[-1].getMessage()
