"""GREEN: prompt, answer parser, score formula, the OpenAI-compatible and transformers judges."""
from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from rewards.green import (
    ERROR_CATEGORIES,
    GreenConfig,
    GreenScorer,
    OpenAIJudge,
    TransformersJudge,
    build_green_scorer,
    build_prompt,
    parse_judgement,
)
from swift_plugins.editgrpo.evaluation.runners import GreenRunner

ANSWER = """[Explanation]:
The candidate misses the effusion and invents a pneumothorax.

[Clinically Significant Errors]:
(a) False report of a finding in the candidate: 1. Small right pneumothorax.
(b) Missing a finding present in the reference: 2. Left pleural effusion; basilar atelectasis.
(c) Misidentification of a finding's anatomic location/position: 0.
(d) Misassessment of the severity of a finding: 0.
(e) Mentioning a comparison that isn't in the reference: 0.
(f) Omitting a comparison detailing a change from a prior study: 0.

[Clinically Insignificant Errors]:
(a) False report of a finding in the candidate: 0.
(b) Missing a finding present in the reference: 1. Degenerative changes of the spine.
(c) Misidentification of a finding's anatomic location/position: 0.
(d) Misassessment of the severity of a finding: 0.
(e) Mentioning a comparison that isn't in the reference: 0.
(f) Omitting a comparison detailing a change from a prior study: 0.

[Matched Findings]:
3. Normal heart size; clear upper lungs; no consolidation.
"""


def test_parser_reads_counts_and_the_score_is_matched_over_matched_plus_significant():
    judgement = parse_judgement(ANSWER)
    assert judgement.parsed
    assert judgement.significant == (1, 2, 0, 0, 0, 0)
    assert judgement.insignificant == (0, 1, 0, 0, 0, 0)
    assert judgement.matched == 3
    assert judgement.score == pytest.approx(3 / (3 + 3))  # insignificant errors do not count


def test_parser_variants_numbered_items_no_errors_and_garbage():
    numbered = ANSWER.replace("(a)", "(1)").replace("(b)", "(2)")
    assert parse_judgement(numbered).significant == (1, 2, 0, 0, 0, 0)
    clean = "[Clinically Significant Errors]:\nNo errors.\n\n[Matched Findings]:\n4. a; b; c; d"
    assert parse_judgement(clean).score == 1.0 and parse_judgement(clean).parsed
    nothing_matched = "[Clinically Significant Errors]:\n(a) False: 2. x; y\n[Matched Findings]:\n0."
    assert parse_judgement(nothing_matched).score == 0.0
    garbage = parse_judgement("lungs lungs the the the effusion")
    assert not garbage.parsed and garbage.score == 0.0
    assert not parse_judgement("[Matched Findings]:\n2. a; b").parsed  # no error section: not trusted


def test_prompt_holds_both_reports_cut_to_max_words_and_asks_for_the_parsed_layout(iu_findings):
    reference, candidate = iu_findings[0], iu_findings[1]
    prompt = build_prompt(reference, candidate)
    assert " ".join(reference.split()) in prompt and " ".join(candidate.split()) in prompt
    assert prompt.index(" ".join(reference.split())) < prompt.index(" ".join(candidate.split()))
    for header in ("[Clinically Significant Errors]:", "[Clinically Insignificant Errors]:", "[Matched Findings]:"):
        assert header in prompt
    assert all(f"({letter})" in prompt for letter in "abcdef") and len(ERROR_CATEGORIES) == 6
    long = " ".join(["effusion"] * 1000)
    assert build_prompt(long, "x", max_words=300).count("effusion") == 300


class FakeJudgeHandler(BaseHTTPRequestHandler):
    """An OpenAI-compatible /v1/chat/completions that judges by keyword: every reference sentence
    the candidate repeats is a match, every other reference sentence a missed finding."""

    requests: list[dict] = []

    def do_POST(self):  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).requests.append(body)
        prompt = body["messages"][0]["content"]
        reference = re.search(r"Reference report:\n(.*?)\n\n", prompt, re.S).group(1)
        candidate = re.search(r"Candidate report:\n(.*?)\n\n", prompt, re.S).group(1)
        sentences = [s.strip() for s in reference.split(".") if s.strip()]
        matched = sum(1 for s in sentences if s in candidate)
        answer = (
            "[Explanation]:\nkeyword judge\n\n[Clinically Significant Errors]:\n"
            f"(a) False report: 0.\n(b) Missing: {len(sentences) - matched}.\n\n"
            f"[Clinically Insignificant Errors]:\nNo errors.\n\n[Matched Findings]:\n{matched}. ok\n"
        )
        payload = json.dumps({"choices": [{"message": {"role": "assistant", "content": answer}}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


@pytest.fixture()
def fake_endpoint():
    FakeJudgeHandler.requests = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeJudgeHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


def test_openai_judge_scores_pairs_dedups_and_skips_empty_candidates(fake_endpoint):
    scorer = build_green_scorer(GreenConfig(endpoint=fake_endpoint, endpoint_model="green"))
    ref = "Heart size is normal. Lungs are clear. No pleural effusion."
    hyps = ["Heart size is normal. Lungs are clear. No pleural effusion.", "Heart size is normal.", "", "Heart size is normal."]
    result = scorer.score(hyps, [ref] * 4)
    assert result.values == pytest.approx([1.0, 1 / 3, 0.0, 1 / 3])
    assert result.components["parsed"] == [1.0] * 4
    assert result.components["significant_errors"] == [0.0, 2.0, 0.0, 2.0]
    assert len(FakeJudgeHandler.requests) == 2  # duplicate pair judged once, empty candidate not sent
    request = FakeJudgeHandler.requests[0]
    assert request["model"] == "green" and request["temperature"] == 0.0
    output = GreenRunner(scorer).run(hyps, [ref] * 4)
    assert output.corpus["green"] == pytest.approx((1 + 1 / 3 + 0 + 1 / 3) / 4)
    assert output.counts == {"green_unparsed": 0}


def test_unreachable_endpoint_and_missing_model_fail_clearly(tmp_path):
    judge = OpenAIJudge("http://127.0.0.1:9/v1", "green", timeout_s=5)
    with pytest.raises(RuntimeError, match="not reachable"):
        GreenScorer(judge).score(["Lungs clear."], ["Lungs are clear."])
    with pytest.raises(FileNotFoundError, match="no config.json.*GREEN-radllama2-7b"):
        TransformersJudge(tmp_path)
    with pytest.raises(ValueError, match="EDITGRPO_GREEN_ENDPOINT_MODEL"):
        build_green_scorer(GreenConfig(endpoint="http://127.0.0.1:1/v1"))
    with pytest.raises(ValueError, match="needs a judge"):
        build_green_scorer(GreenConfig())


def test_config_from_env(monkeypatch, tmp_path):
    for name in ("EDITGRPO_GREEN_DIR", "EDITGRPO_GREEN_ENDPOINT", "EDITGRPO_GREEN_ENDPOINT_MODEL", "EDITGRPO_MODELS_DIR"):
        monkeypatch.delenv(name, raising=False)
    assert not GreenConfig.from_env().configured
    monkeypatch.setenv("EDITGRPO_MODELS_DIR", str(tmp_path))
    assert not GreenConfig.from_env().configured  # no GREEN-radllama2-7b inside
    (tmp_path / "GREEN-radllama2-7b").mkdir()
    assert GreenConfig.from_env().model_dir == str(tmp_path / "GREEN-radllama2-7b")
    assert GreenConfig.from_env(model_dir="/explicit").model_dir == "/explicit"
    monkeypatch.setenv("EDITGRPO_GREEN_ENDPOINT", "http://127.0.0.1:8000/v1")
    config = GreenConfig.from_env()
    assert config.endpoint == "http://127.0.0.1:8000/v1" and config.model_dir is None


def build_tiny_causal_lm(out_dir, texts):
    """A random 2-layer Llama with a word-level tokenizer trained on report text (no download)."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    specials = ["<unk>", "<pad>", "<s>", "</s>"]
    tokenizer = Tokenizer(models.WordLevel(unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.train_from_iterator(texts, trainers.WordLevelTrainer(special_tokens=specials, vocab_size=2000))
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, unk_token="<unk>", pad_token="<pad>", bos_token="<s>", eos_token="</s>"
    )
    fast.save_pretrained(out_dir)
    config = LlamaConfig(
        vocab_size=tokenizer.get_vocab_size(), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=2048,
        pad_token_id=fast.pad_token_id, bos_token_id=fast.bos_token_id, eos_token_id=fast.eos_token_id,
    )
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(out_dir)
    return out_dir


def test_transformers_judge_runs_a_local_causal_lm_and_counts_unparsed_answers(tmp_path, iu_findings):
    model_dir = build_tiny_causal_lm(tmp_path / "tiny-llama", iu_findings[:300] + [build_prompt("a", "b")])
    scorer = build_green_scorer(GreenConfig(model_dir=str(model_dir), batch_size=2, max_new_tokens=6))
    hyps, refs = iu_findings[:3], iu_findings[3:6]
    answers = scorer.judge.generate([build_prompt(r, h) for h, r in zip(hyps, refs)])
    assert len(answers) == 3 and all(isinstance(a, str) for a in answers)
    assert answers == scorer.judge.generate([build_prompt(r, h) for h, r in zip(hyps, refs)])  # greedy
    # A random model cannot answer in GREEN's layout: each pair scores 0 and is counted as unparsed.
    output = GreenRunner(scorer).run(hyps, refs)
    assert output.corpus == {"green": 0.0} and output.counts == {"green_unparsed": 3}


def test_eval_cli_scores_green_through_an_endpoint_and_averages_it(tmp_path, fake_endpoint, iu_reports, monkeypatch):
    from swift_plugins.editgrpo.cli import main

    monkeypatch.delenv("EDITGRPO_GREEN_DIR", raising=False)
    rows = [r for r in iu_reports if r["findings"].strip()][:5]
    path = tmp_path / "copy.jsonl"
    path.write_text("".join(json.dumps({"id": r["uid"], "hyp": r["findings"], "ref": r["findings"]}) + "\n" for r in rows))
    out = tmp_path / "out"
    code = main(["eval", str(path), "--out", str(out), "--metrics", "green,rouge_l", "--no-progress",
                 "--green-endpoint", fake_endpoint, "--green-endpoint-model", "green"])
    assert code == 0
    document = json.loads((out / "metrics.json").read_text())
    # the keyword judge matches every sentence of an identical report
    assert document["runs"]["copy"]["green"] == pytest.approx(1.0)
    assert document["runs"]["copy"]["avg"] == pytest.approx(1.0) and document["avg_over"]["copy"] == ["green"]
    assert document["counts"]["copy"]["green_unparsed"] == 0
    assert document["settings"]["green"] == f"endpoint {fake_endpoint} (model green)"
    assert len(FakeJudgeHandler.requests) == 5
    sample = json.loads((out / "per_sample.jsonl").read_text().splitlines()[0])
    assert sample["green"] == 1.0 and sample["green_parsed"] == 1.0 and sample["green_significant_errors"] == 0.0
    assert sample["green_matched"] == len([s for s in rows[0]["findings"].split(".") if s.strip()])
