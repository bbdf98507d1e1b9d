"""Where the scorer models live, and a preflight that checks every file before transformers is touched.

Layout under ``EDITGRPO_MODELS_DIR`` (each entry overridable by its own variable)::

    chexbert/chexbert.pth     EDITGRPO_CHEXBERT_CKPT     HF StanfordAIMI/RRG_scorers: chexbert.pth
    bert-base-uncased/        EDITGRPO_BERT_DIR          HF google-bert/bert-base-uncased (tokenizer + config)
    radgraph-xl/              EDITGRPO_RADGRAPH_DIR      HF StanfordAIMI/RRG_scorers: radgraph-xl.tar.gz, extracted
    RaTE-NER-Deberta/         EDITGRPO_RATE_NER_DIR      HF Angelakeke/RaTE-NER-Deberta
    BioLORD-2023-C/           EDITGRPO_BIOLORD_DIR       HF FremyCompany/BioLORD-2023-C
    GREEN-radllama2-7b/       EDITGRPO_GREEN_DIR         HF StanfordAIMI/GREEN-radllama2-7b (evaluation only)

A location may also be a Hugging Face hub id (e.g. EDITGRPO_BERT_DIR=google-bert/bert-base-uncased)
for the directory-style models; it is accepted only when HF_HUB_OFFLINE is not set (transformers
downloads it on first use unless the local hub cache holds it: `Requirement.downloads`).
A wrong local path otherwise surfaces as transformers' misleading "Repo id must be in the form"
error after a ~30 s hub retry; the preflight names the metric, the file and where to get it.
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Iterable

from rewards.config import METRICS


_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")


def hub_id_shaped(location: str | os.PathLike) -> bool:
    """Shaped owner/name and no local path (the hub or its local cache may resolve it).

    "models/RaTE-NER-Deberta" is taken for a local path when ./models exists, so a mistyped model
    dir fails at once with "does not exist" instead of trying the network.
    """
    text = str(location)
    if not _HUB_ID.fullmatch(text):
        return False
    path = Path(text).expanduser()
    return not path.exists() and not Path(path.parts[0]).is_dir()


def is_hub_id(location: str | os.PathLike) -> bool:
    """A hub id we may download from: `hub_id_shaped` and the hub not switched off (HF_HUB_OFFLINE)."""
    offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")
    return not offline and hub_id_shaped(location)


DEFAULT_MODELS_DIR = Path("~/.cache/editgrpo/models")

TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "spm.model", "tokenizer.model", "vocab.json", "sentencepiece.bpe.model")
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
INDEX_FILES = ("model.safetensors.index.json", "pytorch_model.bin.index.json")


def model_dir_missing(directory: Path, weights: bool = True) -> dict[str, list[str]]:
    """What an existing local Hugging Face model dir lacks, by part: {"config": [...], "tokenizer":
    [alternatives], "weights": [alternatives, or the shards an index names]}; empty when complete.

    The one completeness rule for every model dir (preflight, check-weights, the RaTE analyzer).
    """
    missing: dict[str, list[str]] = {}
    if not (directory / "config.json").is_file():
        missing["config"] = ["config.json"]
    if not any((directory / name).is_file() for name in TOKENIZER_FILES):
        missing["tokenizer"] = list(TOKENIZER_FILES)
    if weights:
        index = next((directory / name for name in INDEX_FILES if (directory / name).is_file()), None)
        if index is not None:
            try:
                weight_map = json.loads(index.read_text(encoding="utf-8")).get("weight_map", {})
                shards = sorted(set(weight_map.values()))
            except (ValueError, AttributeError, TypeError):  # not JSON, not an object, unhashable entries
                missing["shards"] = [f"{index.name} (unreadable: re-download it)"]
            else:
                absent = [shard for shard in shards if not (directory / shard).is_file()]
                if absent:
                    missing["shards"] = absent
        elif not any((directory / name).is_file() for name in WEIGHT_FILES):
            missing["weights"] = list(WEIGHT_FILES)
    return missing


def check_model_dir(path: str | os.PathLike, role: str) -> Path:
    """The dir as a Path if it holds config, weights and tokenizer; else FileNotFoundError naming all that is missing."""
    directory = Path(path).expanduser()
    if not directory.is_dir():
        raise FileNotFoundError(f"{role} model dir {directory} does not exist (expected a local Hugging Face model dir)")
    missing = model_dir_missing(directory)
    if missing:
        parts = [", ".join(names) if part == "shards" else " or ".join(names) for part, names in missing.items()]
        raise FileNotFoundError(f"{role} model dir {directory} is incomplete: missing {', '.join(parts)}")
    return directory


@dataclass(frozen=True)
class ModelPaths:
    """Resolved locations of every scorer model (local paths; nothing is downloaded)."""

    chexbert_ckpt: Path
    bert_dir: Path
    radgraph_dir: Path
    rate_ner_dir: Path
    biolord_dir: Path
    green_dir: Path
    # the encoder named inside radgraph-xl/config.json, when the user points at it explicitly
    radgraph_encoder_dir: Path | None = None

    @classmethod
    def from_env(cls, models_dir: str | os.PathLike | None = None, environ: dict[str, str] | None = None) -> "ModelPaths":
        env = os.environ if environ is None else environ
        root = Path(models_dir or env.get("EDITGRPO_MODELS_DIR") or DEFAULT_MODELS_DIR).expanduser()

        def pick(variable: str, default: Path) -> Path:
            return Path(env[variable]).expanduser() if env.get(variable) else default

        encoder = env.get("EDITGRPO_RADGRAPH_ENCODER")
        return cls(
            chexbert_ckpt=pick("EDITGRPO_CHEXBERT_CKPT", root / "chexbert" / "chexbert.pth"),
            bert_dir=pick("EDITGRPO_BERT_DIR", root / "bert-base-uncased"),
            radgraph_dir=pick("EDITGRPO_RADGRAPH_DIR", root / "radgraph-xl"),
            rate_ner_dir=pick("EDITGRPO_RATE_NER_DIR", root / "RaTE-NER-Deberta"),
            biolord_dir=pick("EDITGRPO_BIOLORD_DIR", root / "BioLORD-2023-C"),
            green_dir=pick("EDITGRPO_GREEN_DIR", root / "GREEN-radllama2-7b"),
            radgraph_encoder_dir=Path(encoder).expanduser() if encoder else None,
        )

    def resolve_radgraph_encoder(self) -> Path:
        """The BERT dir RadGraph's config names: explicit override, the config's path if local, else a sibling dir.

        The real archive names a hub id; ``weights.th`` holds the encoder weights, so only its
        config and tokenizer are needed, looked up as ``<models dir>/<last part of the id>``.
        """
        if self.radgraph_encoder_dir is not None:
            return self.radgraph_encoder_dir
        name = radgraph_encoder_name(self.radgraph_dir)
        candidates = [Path(name).expanduser(), self.radgraph_dir.parent / Path(name).name, self.radgraph_dir / "encoder"]
        for candidate in candidates:
            if candidate.is_dir():
                return candidate
        return Path(name) if is_hub_id(name) else self.radgraph_dir.parent / Path(name).name

    def as_dict(self) -> dict[str, str]:
        return {f.name: str(getattr(self, f.name)) for f in fields(self) if getattr(self, f.name) is not None}


RADGRAPH_ENCODER_KEY = ("model", "embedder", "token_embedders", "bert", "model_name")


def radgraph_encoder_name(radgraph_dir: Path) -> str:
    """``model.embedder.token_embedders.bert.model_name`` from the archive's config.json; a config
    that is not JSON or lacks the key is a ValueError naming the file (not a JSONDecodeError/KeyError)."""
    path = radgraph_dir / "config.json"
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as error:  # JSONDecodeError, UnicodeDecodeError
        raise ValueError(f"{path} is not valid JSON ({error}); extract radgraph-xl.tar.gz again") from None
    for key in RADGRAPH_ENCODER_KEY:
        value = value.get(key) if isinstance(value, dict) else None
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{path} names no encoder ({'.'.join(RADGRAPH_ENCODER_KEY)} is missing or not a string); "
                         "extract radgraph-xl.tar.gz again")
    return value


def hub_snapshot(repo_id: str) -> Path | None:
    """The local hub cache's snapshot dir of a repo, or None if its config.json was never downloaded."""
    from huggingface_hub import try_to_load_from_cache

    try:
        found = try_to_load_from_cache(repo_id, "config.json")
    except ValueError:  # an id the hub would refuse (HFValidationError): never cached
        return None
    return Path(found).parent if isinstance(found, str) else None


@dataclass(frozen=True)
class Requirement:
    metric: str
    what: str  # the model, as users know it
    path: Path
    layout: str  # what must be there
    source: str  # where users download it
    env: str  # the variable that overrides the location
    weights: bool = False  # a model dir that must hold weights too (not only config + tokenizer)

    def downloads(self) -> bool:
        """A hub id that the local hub cache does not hold complete: transformers would download it on first use."""
        if not is_hub_id(self.path):
            return False
        snapshot = hub_snapshot(str(self.path))
        return snapshot is None or bool(model_dir_missing(snapshot, self.weights))


class MissingWeightsError(FileNotFoundError):
    """Raised once, listing every missing file for every requested metric."""


def _hf_dir_problem(path: Path, weights: bool = False) -> str | None:
    """Everything a model dir lacks, in one line (None when complete, or a hub id we may download)."""
    if is_hub_id(path):
        return None
    if not path.is_dir():
        return f"directory {path} does not exist"
    described = {"config": lambda names: f"{path / 'config.json'} is missing",
                 "tokenizer": lambda names: f"no tokenizer file ({' or '.join(names)}) in {path}",
                 "weights": lambda names: f"no weights ({' or '.join(names)}) in {path}",
                 "shards": lambda names: f"weight shards missing in {path}: {', '.join(names)}"}
    missing = model_dir_missing(path, weights)
    return "; ".join(described[part](names) for part, names in missing.items()) or None


def _radgraph_problem(path: Path) -> str | None:
    """Everything the extracted archive lacks, in one line; a config.json that names no encoder counts."""
    if not path.is_dir():
        return f"directory {path} does not exist"
    problems = [f"{path / name} is missing" for name in ("config.json", "weights.th") if not (path / name).is_file()]
    if not (path / "vocabulary").is_dir():
        problems.append(f"{path / 'vocabulary'}/ is missing")
    if (path / "config.json").is_file():
        try:
            radgraph_encoder_name(path)
        except ValueError as error:
            problems.insert(0, str(error))
    return "; ".join(problems) or None


def requirements(metrics: Iterable[str], paths: ModelPaths) -> list[tuple[Requirement, str | None]]:
    """Every (requirement, problem-or-None) for the metrics, in a stable order."""
    out: list[tuple[Requirement, str | None]] = []
    wanted = set(metrics)
    unknown = wanted - set(METRICS)
    if unknown:
        raise ValueError(f"unknown metrics {sorted(unknown)}; expected some of {METRICS}")
    if "chexbert" in wanted:
        req = Requirement("chexbert", "CheXbert checkpoint", paths.chexbert_ckpt, "chexbert/chexbert.pth (a torch file with 'model_state_dict')",
                          "https://huggingface.co/StanfordAIMI/RRG_scorers (file chexbert.pth)", "EDITGRPO_CHEXBERT_CKPT")
        out.append((req, None if paths.chexbert_ckpt.is_file() else f"{paths.chexbert_ckpt} is missing"))
        req = Requirement("chexbert", "bert-base-uncased tokenizer/config", paths.bert_dir, "bert-base-uncased/{config.json, vocab.txt or tokenizer.json}",
                          "https://huggingface.co/google-bert/bert-base-uncased", "EDITGRPO_BERT_DIR")
        out.append((req, _hf_dir_problem(paths.bert_dir)))
    if "radgraph" in wanted:
        req = Requirement("radgraph", "RadGraph-XL (DyGIE++)", paths.radgraph_dir, "radgraph-xl/{config.json, vocabulary/, weights.th} (radgraph-xl.tar.gz extracted)",
                          "https://huggingface.co/StanfordAIMI/RRG_scorers (file radgraph-xl.tar.gz)", "EDITGRPO_RADGRAPH_DIR")
        problem = _radgraph_problem(paths.radgraph_dir)
        out.append((req, problem))
        if problem is None:
            encoder = paths.resolve_radgraph_encoder()
            name = radgraph_encoder_name(paths.radgraph_dir)
            req = Requirement("radgraph", f"RadGraph encoder tokenizer/config ({name})", encoder,
                              f"{Path(name).name}/{{config.json, vocab.txt or tokenizer.json}} next to radgraph-xl/",
                              f"https://huggingface.co/{name}" if "/" in name and not Path(name).is_absolute() else "the encoder named in radgraph-xl/config.json",
                              "EDITGRPO_RADGRAPH_ENCODER")
            out.append((req, _hf_dir_problem(encoder)))
    if "ratescore" in wanted:
        for what, path, layout, source, env in (
            ("RaTE-NER (DeBERTa-v3 token classifier)", paths.rate_ner_dir, "RaTE-NER-Deberta/{config.json, tokenizer, weights}",
             "https://huggingface.co/Angelakeke/RaTE-NER-Deberta", "EDITGRPO_RATE_NER_DIR"),
            ("BioLORD-2023-C (MPNet embedder)", paths.biolord_dir, "BioLORD-2023-C/{config.json, tokenizer, weights}",
             "https://huggingface.co/FremyCompany/BioLORD-2023-C", "EDITGRPO_BIOLORD_DIR"),
        ):
            req = Requirement("ratescore", what, path, layout, source, env, weights=True)
            out.append((req, _hf_dir_problem(req.path, req.weights)))
    if "green" in wanted:
        req = Requirement("green", "GREEN judge LLM", paths.green_dir, "GREEN-radllama2-7b/{config.json, tokenizer, weights}",
                          "https://huggingface.co/StanfordAIMI/GREEN-radllama2-7b", "EDITGRPO_GREEN_DIR", weights=True)
        out.append((req, _hf_dir_problem(req.path, req.weights)))
    return out


def preflight(metrics: Iterable[str], paths: ModelPaths | None = None) -> ModelPaths:
    """Check every file the metrics need; raise one MissingWeightsError naming all that is missing."""
    paths = paths or ModelPaths.from_env()
    problems = [(req, problem) for req, problem in requirements(metrics, paths) if problem]
    if problems:
        lines = ["clinical reward models are missing (nothing is downloaded; put the files in place or set the variables):"]
        for req, problem in problems:
            lines.append(
                f"- metric {req.metric}: {req.what}: {problem}\n"
                f"    expected layout: {req.layout}\n"
                f"    download from: {req.source}\n"
                f"    location: {req.path} (set {req.env} or EDITGRPO_MODELS_DIR to change it)"
            )
        lines.append("Offline alternative: the proxy scorers need no weights (EDITGRPO_REWARD_BACKEND=rules, --backend rules).")
        raise MissingWeightsError("\n".join(lines))
    return paths
