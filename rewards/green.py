"""GREEN: an LLM judge counts the errors of a generated report against the reference.

GREEN (Ostmeier et al., 2024) asks a fine-tuned judge (GREEN-RadLlama2-7b) for clinically
significant / insignificant errors in six categories and the number of matched findings;
score = matched / (matched + significant errors), 0 when nothing matched. The `green-score`
package cannot be installed beside ms-swift (it pins Python 3.12.1 / torch 2.2), so this is our
own prompt and parser around any causal LM: a local checkpoint through transformers, or an
OpenAI-compatible endpoint (`swift deploy`, vLLM). The prompt asks for GREEN's answer layout,
which the fine-tuned judge was trained to produce; the wording is ours, so scores track but
are not guaranteed identical to the package's.
"""
from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, Sequence

from rewards.base import Scorer, ScoreResult
from rewards.config import RewardConfig

SIGNIFICANT = "Clinically Significant Errors"
INSIGNIFICANT = "Clinically Insignificant Errors"
MATCHED = "Matched Findings"
EXPLANATION = "Explanation"
# The six error categories, (a)-(f), in the order the judge reports them.
ERROR_CATEGORIES: tuple[str, ...] = (
    "A finding reported in the candidate that the reference does not support",
    "A finding of the reference that the candidate misses",
    "A finding placed at the wrong anatomic location or position",
    "A finding whose severity is assessed wrongly",
    "A comparison to a prior study that the reference does not make",
    "A change from a prior study, described in the reference, that the candidate omits",
)
DEFAULT_MAX_WORDS = 300  # each report is cut to this many words in the prompt, as GREEN does


def build_prompt(reference: str, candidate: str, max_words: int = DEFAULT_MAX_WORDS) -> str:
    """The judge's instruction for one pair; asks for GREEN's bracketed answer layout."""
    reference = " ".join(reference.split()[:max_words])
    candidate = " ".join(candidate.split()[:max_words])
    categories = "\n".join(f"({chr(ord('a') + i)}) {text}." for i, text in enumerate(ERROR_CATEGORIES))
    error_lines = "\n".join(
        f"({chr(ord('a') + i)}) <category>: <number of errors>. <error 1>; <error 2>; ..."
        for i in range(len(ERROR_CATEGORIES))
    )
    return (
        "You are an expert radiologist. Compare a candidate chest X-ray report with a reference "
        "report written by radiologists, and judge how accurate the candidate is.\n\n"
        "Count the clinically significant errors and, separately, the clinically insignificant "
        "errors of the candidate. Each error belongs to one of these categories:\n"
        f"{categories}\n"
        "Judge clinical content, not writing style.\n\n"
        f"Reference report:\n{reference}\n\n"
        f"Candidate report:\n{candidate}\n\n"
        "Answer in exactly this layout, with every category listed even when its count is 0:\n"
        f"[{EXPLANATION}]:\n<your reasoning>\n\n"
        f"[{SIGNIFICANT}]:\n{error_lines}\n\n"
        f"[{INSIGNIFICANT}]:\n{error_lines}\n\n"
        f"[{MATCHED}]:\n<number of matched findings>. <finding 1>; <finding 2>; ...\n"
    )


@dataclass(frozen=True)
class GreenJudgement:
    """What was read from one judge answer."""

    significant: tuple[int, ...]  # per category (a)-(f)
    insignificant: tuple[int, ...]
    matched: int
    parsed: bool  # both the significant-error and the matched-findings sections were found

    @property
    def score(self) -> float:
        if self.matched == 0:
            return 0.0
        return self.matched / (self.matched + sum(self.significant))


_SECTION_RE = re.compile(
    r"\[(" + "|".join(re.escape(s) for s in (EXPLANATION, SIGNIFICANT, INSIGNIFICANT, MATCHED)) + r")\]\s*:?",
    re.IGNORECASE,
)
_ITEM_RE = re.compile(r"^\s*\(([a-f1-6])\)([^\n]*)", re.MULTILINE | re.IGNORECASE)
_ITEM_COUNT_RE = re.compile(r":\s*(\d+)\b")
_LEADING_NUMBER_RE = re.compile(r"^\s*(\d+)\b")


def _sections(text: str) -> dict[str, str]:
    """Section title (lower-case) -> its body, up to the next bracketed title."""
    marks = list(_SECTION_RE.finditer(text))
    return {
        mark.group(1).lower(): text[mark.end() : marks[i + 1].start() if i + 1 < len(marks) else len(text)]
        for i, mark in enumerate(marks)
    }


def _error_counts(body: str | None) -> tuple[int, ...]:
    counts = [0] * len(ERROR_CATEGORIES)
    if body is None or body.strip().lower().startswith("no"):
        return tuple(counts)
    for marker, rest in _ITEM_RE.findall(body):
        index = int(marker) - 1 if marker.isdigit() else ord(marker.lower()) - ord("a")
        count = _ITEM_COUNT_RE.search(rest)
        if count:
            counts[index] = int(count.group(1))
    return tuple(counts)


def parse_judgement(text: str) -> GreenJudgement:
    """Read the counts from a judge answer; missing sections count as zero and mark it unparsed."""
    sections = _sections(text or "")
    significant = sections.get(SIGNIFICANT.lower())
    matched_body = sections.get(MATCHED.lower())
    matched = _LEADING_NUMBER_RE.match(matched_body) if matched_body is not None else None
    return GreenJudgement(
        significant=_error_counts(significant),
        insignificant=_error_counts(sections.get(INSIGNIFICANT.lower())),
        matched=int(matched.group(1)) if matched else 0,
        parsed=significant is not None and matched_body is not None,
    )


class Judge(Protocol):
    """Turns prompts into answers, greedily (evaluation must be deterministic)."""

    def generate(self, prompts: Sequence[str]) -> list[str]: ...


class TransformersJudge:
    """A local causal LM directory run through transformers, loaded on first use."""

    def __init__(
        self,
        model_dir: str | Path,
        device: str = "auto",
        dtype: str = "auto",
        batch_size: int = 8,
        max_new_tokens: int = 1024,
    ):
        from rewards import resolve_device

        self.model_dir = Path(model_dir)
        if not (self.model_dir / "config.json").is_file():
            raise FileNotFoundError(
                f"GREEN judge: {self.model_dir} has no config.json; expected a Hugging Face causal-LM "
                "directory such as StanfordAIMI/GREEN-radllama2-7b downloaded with `huggingface-cli download`"
            )
        self.device, self.dtype = resolve_device(device), dtype
        self.batch_size, self.max_new_tokens = batch_size, max_new_tokens
        self._model = self._tokenizer = None

    def _load(self) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(self.model_dir, padding_side="left", local_files_only=True)
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        dtype = "auto" if self.dtype == "auto" else getattr(torch, self.dtype)
        model = AutoModelForCausalLM.from_pretrained(self.model_dir, dtype=dtype, local_files_only=True)
        self._model, self._tokenizer = model.to(self.device).eval(), tokenizer

    def _format(self, prompt: str) -> str:
        tokenizer = self._tokenizer
        if tokenizer.chat_template:
            return tokenizer.apply_chat_template(
                [{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True
            )
        # GREEN's judge was fine-tuned on a <|user|>/<|assistant|> layout; its tokenizer ships no template.
        # The text is tokenized without special tokens (a chat template writes its own), so BOS goes here.
        return f"{tokenizer.bos_token or ''}<|user|>\n{prompt}{tokenizer.eos_token or ''}\n<|assistant|>\n"

    def generate(self, prompts: Sequence[str]) -> list[str]:
        import torch

        if self._model is None:
            self._load()
        answers: list[str] = []
        for start in range(0, len(prompts), self.batch_size):
            texts = [self._format(prompt) for prompt in prompts[start : start + self.batch_size]]
            batch = self._tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
            batch = batch.to(self.device)
            with torch.inference_mode():
                output = self._model.generate(
                    **batch,
                    do_sample=False,
                    max_new_tokens=self.max_new_tokens,
                    pad_token_id=self._tokenizer.pad_token_id,
                )
            new_tokens = output[:, batch["input_ids"].shape[1] :]
            answers.extend(self._tokenizer.batch_decode(new_tokens, skip_special_tokens=True))
        return answers


class OpenAIJudge:
    """An OpenAI-compatible chat endpoint (`swift deploy`, vLLM), requests sent concurrently."""

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str | None = None,
        max_new_tokens: int = 1024,
        workers: int = 8,
        timeout_s: float = 600.0,
    ):
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model, self.api_key = model, api_key
        self.max_new_tokens, self.workers, self.timeout_s = max_new_tokens, workers, timeout_s

    def _ask(self, prompt: str) -> str:
        body = {
            "model": self.model,
            "messages": [{"role": "user", "content": prompt}],
            "temperature": 0.0,
            "max_tokens": self.max_new_tokens,
        }
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        request = urllib.request.Request(self.url, json.dumps(body).encode(), headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                answer = json.loads(response.read())
        except urllib.error.HTTPError as error:
            raise RuntimeError(f"GREEN judge at {self.url}: HTTP {error.code}: {error.read()[:300]!r}") from None
        except urllib.error.URLError as error:
            raise RuntimeError(f"GREEN judge at {self.url} is not reachable: {error.reason}") from None
        try:
            return answer["choices"][0]["message"]["content"] or ""
        except (KeyError, IndexError, TypeError):
            raise RuntimeError(f"GREEN judge at {self.url}: unexpected answer {str(answer)[:300]}") from None

    def generate(self, prompts: Sequence[str]) -> list[str]:
        with ThreadPoolExecutor(max_workers=max(1, self.workers)) as pool:
            return list(pool.map(self._ask, prompts))


class GreenScorer(Scorer):
    """GREEN per pair. Identical pairs are judged once; an empty candidate matches nothing (0, no call)."""

    name = "green"

    def __init__(self, judge: Judge, max_words: int = DEFAULT_MAX_WORDS):
        self.judge = judge
        self.max_words = max_words

    def judge_pairs(self, hyps: Sequence[str], refs: Sequence[str]) -> list[GreenJudgement]:
        if len(hyps) != len(refs):
            raise ValueError(f"{len(hyps)} hypotheses vs {len(refs)} references")
        empty = GreenJudgement((0,) * len(ERROR_CATEGORIES), (0,) * len(ERROR_CATEGORIES), 0, True)
        unique = list(dict.fromkeys((h, r) for h, r in zip(hyps, refs) if h.strip()))
        answers = self.judge.generate([build_prompt(r, h, self.max_words) for h, r in unique])
        judged = {pair: parse_judgement(answer) for pair, answer in zip(unique, answers)}
        return [judged[(h, r)] if h.strip() else empty for h, r in zip(hyps, refs)]

    def score(self, hyps: Sequence[str], refs: Sequence[str]) -> ScoreResult:
        judgements = self.judge_pairs(hyps, refs)
        return ScoreResult(
            values=[j.score for j in judgements],
            components={
                "parsed": [float(j.parsed) for j in judgements],
                "matched": [float(j.matched) for j in judgements],
                "significant_errors": [float(sum(j.significant)) for j in judgements],
                "insignificant_errors": [float(sum(j.insignificant)) for j in judgements],
            },
        )


@dataclass(frozen=True)
class GreenConfig:
    """Where the judge comes from; `model_dir` (transformers) or `endpoint` + `endpoint_model`."""

    model_dir: str | None = None
    endpoint: str | None = None
    endpoint_model: str | None = None
    api_key: str | None = None
    device: str = "auto"  # cuda when available
    dtype: str = "auto"
    batch_size: int = 8
    max_new_tokens: int = 1024

    @classmethod
    def from_settings(cls, settings: RewardConfig, **overrides: Any) -> "GreenConfig":
        """Explicit values first, then the settings' judge (endpoint, dir), then
        `<models dir>/GREEN-radllama2-7b` when that directory exists (rewards.paths layout)."""
        values = {key: value for key, value in overrides.items() if value is not None}
        values.setdefault("endpoint", settings.green_endpoint)
        values.setdefault("endpoint_model", settings.green_endpoint_model)
        values.setdefault("api_key", settings.green_api_key)
        values.setdefault("device", settings.device)
        model_dir = values.get("model_dir") or settings.green_dir
        if not model_dir and not values["endpoint"] and settings.models_dir:
            default = Path(settings.expanded_models_dir) / "GREEN-radllama2-7b"
            model_dir = str(default) if default.is_dir() else None
        values["model_dir"] = model_dir or None
        return cls(**values)

    @classmethod
    def from_env(cls, **overrides: Any) -> "GreenConfig":
        """`from_settings` on the validated EDITGRPO_* settings."""
        return cls.from_settings(RewardConfig.from_env(), **overrides)

    @property
    def configured(self) -> bool:
        return bool(self.model_dir or self.endpoint)

    def describe(self) -> str:
        if self.endpoint:
            return f"endpoint {self.endpoint} (model {self.endpoint_model})"
        return f"local model {self.model_dir} on {self.device}" if self.model_dir else "not configured"


def build_green_scorer(config: GreenConfig) -> GreenScorer:
    if config.endpoint:
        if not config.endpoint_model:
            raise ValueError("a GREEN endpoint needs the served model name (EDITGRPO_GREEN_ENDPOINT_MODEL)")
        judge: Judge = OpenAIJudge(config.endpoint, config.endpoint_model, config.api_key, config.max_new_tokens)
    elif config.model_dir:
        judge = TransformersJudge(config.model_dir, config.device, config.dtype, config.batch_size, config.max_new_tokens)
    else:
        raise ValueError(
            "GREEN needs a judge: EDITGRPO_GREEN_DIR=<dir of StanfordAIMI/GREEN-radllama2-7b> or "
            "EDITGRPO_GREEN_ENDPOINT=<http://host:port/v1> with EDITGRPO_GREEN_ENDPOINT_MODEL"
        )
    return GreenScorer(judge)
