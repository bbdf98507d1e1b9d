"""EditGRPOConfig: EDITGRPO_* parsing, one clear error for bad values, missing model dirs, the recorded json."""
from __future__ import annotations

import json

import pytest

from rewards.config import RewardConfig
from swift_plugins.editgrpo.config import CONFIG_FILENAME, ENV_VARIABLES, EditGRPOConfig, EditGRPOConfigError


def test_defaults_follow_the_reference_code():
    config = EditGRPOConfig.from_env({})
    assert (config.edits, config.edit_fraction, config.placement, config.tau) == (True, 0.5, "overwrite", 0.6)
    assert (config.match, config.analyzer, config.advantage, config.reward.backend) == ("affinity", "rate", "mean", "real")


def test_every_variable_is_read():
    env = {
        "EDITGRPO_EDITS": "off", "EDITGRPO_EDIT_FRACTION": "1", "EDITGRPO_PLACEMENT": "in_place", "EDITGRPO_OPS": "2",
        "EDITGRPO_TAU": "0", "EDITGRPO_MATCH": "PAPER", "EDITGRPO_FP_SCOPE": "sentence", "EDITGRPO_ANALYZER": "lexicon",
        "EDITGRPO_SEED": "7", "EDITGRPO_ADVANTAGE": "std", "EDITGRPO_REWARD_BACKEND": "rules", "EDITGRPO_DEVICE": "cpu",
        "EDITGRPO_BATCH_SIZE": "4", "EDITGRPO_REWARD_DTYPE": "BFloat16",
    }
    config = EditGRPOConfig.from_env(env)
    assert config == EditGRPOConfig(edits=False, edit_fraction=1.0, placement="in_place", ops_per_rollout=2, tau=0.0,
                                    match="paper", fp_scope="sentence", analyzer="lexicon", seed=7, advantage="std",
                                    reward=RewardConfig(backend="rules", device="cpu", batch_size=4, dtype="bfloat16"))
    reward_only = {"EDITGRPO_MODELS_DIR", "EDITGRPO_REWARD_CACHE", "EDITGRPO_GREEN_DIR", "EDITGRPO_GREEN_ENDPOINT",
                   "EDITGRPO_GREEN_ENDPOINT_MODEL", "EDITGRPO_GREEN_API_KEY"}
    assert set(env) | reward_only == set(ENV_VARIABLES.values())


@pytest.mark.parametrize(
    "variable, value, message",
    [
        ("EDITGRPO_TAU", "1.5", "EDITGRPO_TAU=1.5: must be in [0, 1]"),
        ("EDITGRPO_TAU", "-0.1", "EDITGRPO_TAU=-0.1: must be in [0, 1]"),
        ("EDITGRPO_EDIT_FRACTION", "0", "EDITGRPO_EDIT_FRACTION=0.0: must be in (0, 1]"),
        ("EDITGRPO_EDIT_FRACTION", "1.01", "EDITGRPO_EDIT_FRACTION=1.01: must be in (0, 1]"),
        ("EDITGRPO_ANALYZER", "radgraph", "EDITGRPO_ANALYZER='radgraph': unknown, expected one of rate|lexicon"),
        ("EDITGRPO_REWARD_BACKEND", "gpt", "EDITGRPO_REWARD_BACKEND='gpt': unknown, expected one of real|rules"),
        ("EDITGRPO_MATCH", "exact", "EDITGRPO_MATCH='exact': unknown"),
        ("EDITGRPO_EDITS", "maybe", "EDITGRPO_EDITS='maybe': expected on|off"),
        ("EDITGRPO_TAU", "high", "EDITGRPO_TAU='high': could not convert"),
        ("EDITGRPO_OPS", "0", "EDITGRPO_OPS=0: must be >= 1"),
        ("EDITGRPO_REWARD_DTYPE", "bf16", "EDITGRPO_REWARD_DTYPE='bf16': unknown, expected one of float32|bfloat16|float16"),
    ],
)
def test_bad_values_raise_one_clear_message(variable, value, message):
    with pytest.raises(EditGRPOConfigError, match="invalid EditGRPO configuration") as error:
        EditGRPOConfig.from_env({variable: value})
    assert message in str(error.value)


def test_all_problems_are_reported_together(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(EditGRPOConfigError) as error:
        EditGRPOConfig.from_env({"EDITGRPO_TAU": "2", "EDITGRPO_EDIT_FRACTION": "-1", "EDITGRPO_MODELS_DIR": str(missing)})
    text = str(error.value)
    assert "EDITGRPO_TAU" in text and "EDITGRPO_EDIT_FRACTION" in text and f"{str(missing)!r}: directory does not exist" in text
    assert text.count("invalid EditGRPO configuration") == 1


def test_missing_model_dirs_are_named(tmp_path):
    config = EditGRPOConfig.from_env({"EDITGRPO_MODELS_DIR": str(tmp_path)})  # exists but empty
    analyzer_only = config.model_problems(uses_clinical_rewards=False)
    assert len(analyzer_only) == 2  # RaTE-NER and BioLORD
    assert all("EDITGRPO_ANALYZER=rate" in p and str(tmp_path) in p for p in analyzer_only)
    with_rewards = config.model_problems(uses_clinical_rewards=True)
    assert any("CheXbert" in p for p in with_rewards) and any("RadGraph" in p for p in with_rewards)
    offline = EditGRPOConfig.from_env({"EDITGRPO_MODELS_DIR": str(tmp_path), "EDITGRPO_ANALYZER": "lexicon",
                                       "EDITGRPO_REWARD_BACKEND": "rules"})
    assert offline.model_problems(uses_clinical_rewards=True) == []
    edits_off = EditGRPOConfig.from_env({"EDITGRPO_EDITS": "off", "EDITGRPO_MODELS_DIR": str(tmp_path)})
    assert edits_off.model_problems(uses_clinical_rewards=False) == []


def test_rate_analyzer_options_point_at_the_models_dir(tmp_path):
    options = EditGRPOConfig.from_env({"EDITGRPO_MODELS_DIR": str(tmp_path), "EDITGRPO_DEVICE": "cpu",
                                       "EDITGRPO_BATCH_SIZE": "8", "EDITGRPO_REWARD_DTYPE": "bfloat16"}).analyzer_options
    assert options == {"ner_dir": str(tmp_path / "RaTE-NER-Deberta"), "embedder_dir": str(tmp_path / "BioLORD-2023-C"),
                       "batch_size": 8, "device": "cpu", "dtype": "bfloat16"}
    assert EditGRPOConfig(analyzer="lexicon").analyzer_options == {}


def test_saved_json_round_trips(tmp_path):
    config = EditGRPOConfig.from_env({"EDITGRPO_TAU": "0.7", "EDITGRPO_ANALYZER": "lexicon"})
    path = config.save(tmp_path / "run", {"swift": {"loss_type": "dr_grpo"}})
    assert path.name == CONFIG_FILENAME
    saved = json.loads(path.read_text())
    assert saved.pop("swift") == {"loss_type": "dr_grpo"}
    assert EditGRPOConfig.from_dict(saved) == config


def test_trainer_check_reports_value_and_model_problems_in_one_message(tmp_path):
    """What the trainer runs before training: bad values and missing models, one error."""
    env = {"EDITGRPO_TAU": "1.5", "EDITGRPO_MODELS_DIR": str(tmp_path)}
    with pytest.raises(EditGRPOConfigError) as error:
        EditGRPOConfig.from_env(env, uses_clinical_rewards=False)
    text = str(error.value)
    assert text.startswith("invalid EditGRPO configuration: EDITGRPO_TAU=1.5: must be in [0, 1]")
    assert "RaTE-NER" in text and "BioLORD" in text
    assert EditGRPOConfig.from_env({"EDITGRPO_MODELS_DIR": str(tmp_path)}).analyzer == "rate"  # models unchecked
