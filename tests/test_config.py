"""EditGRPOConfig: EDITGRPO_* parsing, one clear error for bad values, missing model dirs, the recorded json."""
from __future__ import annotations

import json
import re

import pytest

from rewards.config import RewardConfig, SettingsError
from swift_plugins.editgrpo import REPO_ROOT
from swift_plugins.editgrpo.config import (CONFIG_FILENAME, ENV_VARIABLES, KNOWN_VARIABLES, OTHER_VARIABLES,
                                           EditGRPOConfig, EditGRPOConfigError)


def test_defaults_follow_the_reference_code():
    config = EditGRPOConfig.from_env({})
    assert (config.edits, config.edit_fraction, config.placement, config.tau) == (True, 0.5, "overwrite", 0.6)
    assert (config.edit_ratio, config.luffy_gamma) == ("recompute", 0.1)  # LUFFY's gamma, used only with luffy
    assert (config.match, config.analyzer, config.advantage, config.reward.backend) == ("affinity", "rate", "mean", "real")


def test_every_variable_is_read():
    env = {
        "EDITGRPO_EDITS": "off", "EDITGRPO_EDIT_FRACTION": "1", "EDITGRPO_PLACEMENT": "in_place", "EDITGRPO_OPS": "2",
        "EDITGRPO_TAU": "0", "EDITGRPO_MATCH": "PAPER", "EDITGRPO_FP_SCOPE": "sentence", "EDITGRPO_ANALYZER": "lexicon",
        "EDITGRPO_SEED": "7", "EDITGRPO_ADVANTAGE": "std", "EDITGRPO_REWARD_BACKEND": "rules", "EDITGRPO_DEVICE": "cpu",
        "EDITGRPO_BATCH_SIZE": "4", "EDITGRPO_REWARD_DTYPE": "BFloat16", "EDITGRPO_EDIT_RATIO": "LUFFY",
        "EDITGRPO_LUFFY_GAMMA": "0.25",
    }
    config = EditGRPOConfig.from_env(env)
    assert config == EditGRPOConfig(edits=False, edit_fraction=1.0, placement="in_place", ops_per_rollout=2, tau=0.0,
                                    match="paper", fp_scope="sentence", analyzer="lexicon", seed=7, advantage="std",
                                    edit_ratio="luffy", luffy_gamma=0.25,
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
        ("EDITGRPO_EDIT_RATIO", "clip", "EDITGRPO_EDIT_RATIO='clip': unknown, expected one of recompute|luffy"),
        ("EDITGRPO_LUFFY_GAMMA", "0", "EDITGRPO_LUFFY_GAMMA=0.0: must be a finite number > 0"),
        ("EDITGRPO_LUFFY_GAMMA", "-0.1", "EDITGRPO_LUFFY_GAMMA=-0.1: must be a finite number > 0"),
        ("EDITGRPO_LUFFY_GAMMA", "inf", "EDITGRPO_LUFFY_GAMMA=inf: must be a finite number > 0"),
        ("EDITGRPO_LUFFY_GAMMA", "nan", "EDITGRPO_LUFFY_GAMMA=nan: must be a finite number > 0"),
        ("EDITGRPO_LUFFY_GAMMA", "small", "EDITGRPO_LUFFY_GAMMA='small': could not convert"),
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


def test_unknown_variable_names_are_reported_with_the_closest_known_one():
    """A typo used to leave the default in force silently."""
    with pytest.raises(EditGRPOConfigError) as error:
        EditGRPOConfig.from_env({"EDITGRPO_TAUU": "0.7", "EDITGRPO_MODEL_DIR": "/models", "EDITGRPO_COLOUR": "red"})
    assert str(error.value) == (
        "invalid EditGRPO configuration: EDITGRPO_COLOUR: unknown variable; "
        "EDITGRPO_MODEL_DIR: unknown variable; did you mean EDITGRPO_MODELS_DIR?; "
        "EDITGRPO_TAUU: unknown variable; did you mean EDITGRPO_TAU?")
    # names the project reads outside the settings (model paths, data dir, demo profile) are accepted
    assert EditGRPOConfig.from_env({name: "x" for name in OTHER_VARIABLES}) == EditGRPOConfig()
    assert EditGRPOConfig.from_env({"HOME": "/root", "EDITGRPO": "x"}) == EditGRPOConfig()  # not EDITGRPO_*


def _names_in(folders: tuple[str, ...]) -> set[str]:
    pattern = re.compile(r"EDITGRPO_[A-Z0-9_]*[A-Z0-9]")
    return {name for folder in folders for path in (REPO_ROOT / folder).rglob("*") if path.suffix in (".py", ".sh")
            for name in pattern.findall(path.read_text(encoding="utf-8"))}


def test_known_variables_are_exactly_the_names_the_project_reads():
    """Every EDITGRPO_* name in the sources is known (else setting it would be refused), and every
    known name is read somewhere (the tests read EDITGRPO_HYPOTHESIS_EXAMPLES)."""
    sources = ("templates", "datasets_registry", "rewards", "swift_plugins", "run", "benchmarks")
    assert _names_in(sources) <= KNOWN_VARIABLES
    assert KNOWN_VARIABLES <= _names_in(sources + ("tests",))


def test_reward_backend_is_case_insensitive_and_works_as_rules(monkeypatch, iu_findings):
    """EDITGRPO_REWARD_BACKEND=RULES passed the trainer's check, then killed the run at the first reward."""
    from rewards.orms import EditGRPOClinical

    assert EditGRPOConfig.from_env({"EDITGRPO_REWARD_BACKEND": "RULES"}).reward.backend == "rules"
    refs = iu_findings[:3]
    hyps = [iu_findings[0], iu_findings[3], ""]
    monkeypatch.setenv("EDITGRPO_REWARD_BACKEND", "rules")
    expected = EditGRPOClinical()(hyps, solution=refs)
    monkeypatch.setenv("EDITGRPO_REWARD_BACKEND", "RULES")
    orm = EditGRPOClinical()
    assert orm.config.backend == "rules" and orm(hyps, solution=refs) == expected


@pytest.mark.parametrize("variable, value, message", [
    ("EDITGRPO_REWARD_CACHE", "abc", "EDITGRPO_REWARD_CACHE='abc': invalid literal for int()"),
    ("EDITGRPO_BATCH_SIZE", "abc", "EDITGRPO_BATCH_SIZE='abc': invalid literal for int()"),
    ("EDITGRPO_DEVICE", "bogus", "EDITGRPO_DEVICE='bogus': expected auto, cpu, mps, cuda or cuda:N"),
])
def test_bad_scorer_settings_stop_every_entry_point_at_start(monkeypatch, variable, value, message):
    """They used to pass the check and raise a bare traceback mid-run; now the trainer's config and
    the ORMs (built by swift before training) both stop with one message."""
    from rewards.orms import EditGRPOClinical

    with pytest.raises(EditGRPOConfigError, match="^invalid EditGRPO configuration: ") as error:
        EditGRPOConfig.from_env({variable: value, "EDITGRPO_REWARD_BACKEND": "rules"})
    assert message in str(error.value)
    monkeypatch.setenv("EDITGRPO_REWARD_BACKEND", "rules")
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError, match="^invalid reward settings: ") as error:
        EditGRPOClinical()
    assert message in str(error.value)


def test_models_dir_with_tilde_is_expanded(monkeypatch, tmp_path):
    """'~/models' was refused by the trainer although it exists (check-weights expanded it)."""
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "models").mkdir()
    config = EditGRPOConfig.from_env({"EDITGRPO_MODELS_DIR": "~/models"})
    assert config.reward.expanded_models_dir == str(tmp_path / "models")
    assert config.model_paths.rate_ner_dir == tmp_path / "models" / "RaTE-NER-Deberta"
    assert RewardConfig.from_env({"EDITGRPO_MODELS_DIR": "~/models"}).expanded_models_dir == str(tmp_path / "models")
    with pytest.raises(EditGRPOConfigError, match="EDITGRPO_MODELS_DIR='~/elsewhere': directory does not exist"):
        EditGRPOConfig.from_env({"EDITGRPO_MODELS_DIR": "~/elsewhere"})


def test_a_device_flag_is_checked_like_the_variable():
    from rewards.config import RewardConfig

    _, problems = RewardConfig.parse({}, device="gpu")
    assert problems == ["EDITGRPO_DEVICE='gpu': expected auto, cpu, mps, cuda or cuda:N"]
    assert RewardConfig.parse({}, device="cuda:1")[1] == []
