"""`EditGRPOTrainer`: ms-swift's GRPOTrainer plus post-rollout edits and the EditGRPO advantage.

Registered as swift's `grpo` trainer by `register()`; everything else (generation, rewards,
old/ref log-probs, loss, logging) is swift's own. The overrides:

- `_generate_completions`: after swift's rollout, a completion that sampled a media placeholder
  token (`<|image_pad|>`, ...) is cut before it (`cut_at_media_tokens`; swift's re-encoding would
  stop the run), counted in `editgrpo/media_token_cuts`. Then, while training only, gather every rank's
  rollouts, pick (source, target) pairs per group on that global view (`algorithm.step`, identical
  on all ranks) and write each local target's edited copy: text, token ids (no special tokens,
  then the model family's end token, `edit_end_id`; `<|im_end|>` for every family in the table,
  cut to `max_completion_length`), `finish_reason='stop'`, no engine log-probs; the template's
  response prefix (`response_prefix`: Qwen3.5's empty thinking block) is taken off the rollout text
  before the edit and put back on the edited text. Old and reference log-probs are recomputed by
  swift for every row.
- `_prepare_batch_inputs` (rollout importance sampling): swift builds the engine log-prob
  tensor of a micro-batch only if *every* row has engine log-probs, and applies the
  correction only if every rank has it, so one edited row would silently switch the
  correction off for everybody. Edited rows get the recomputed old log-probs as their
  "rollout" log-probs instead: their IS ratio is exactly 1 (no correction, no masking: an
  edit has no behaviour-policy probability), on-policy rows keep their correction, and the
  off-policy diagnostics count edited rows as on-policy (log-ratio 0). With
  `EDITGRPO_EDIT_RATIO=luffy` it also marks each micro-batch's edited rows (`EDITED_ROWS`).
- `_compute_loss_and_metrics` (`EDITGRPO_EDIT_RATIO=luffy` only): swift computes the whole loss with
  the edited rows' advantages set to 0, which zeroes exactly their clipped policy term
  -min(r A, clip(r) A) and leaves every other term (KL, on-policy rows, IS weights, SDAR, metrics)
  as swift computes it; the edited rows' LUFFY term -p/(p+gamma) A (`edit_ratio`) is then added,
  on the log-probs of the same forward and reduced like swift's loss type.
- `_compute_advantages`: `advantage.compute_advantages` (group mean-centred, edited rows in
  the mean; option std-normalised) on swift's weighted rewards, after swift's own reward
  metrics are logged.
- Rollout sampling: on the transformers engine (`--use_vllm false`) swift fills every sampling
  field it maps to None (`--top_k -1`; `--min_p` and the fields it has no flag for) from the
  checkpoint's generation config, and transformers what is still None from the checkpoint, then
  its own defaults (top-k 50): a Qwen-Instruct checkpoint (top_k 1, top_p 0.001) samples one
  completion per group. The engine's defaults are replaced by `rollout_generation_config`, the
  checkpoint's with every sampling field set to what the run asked; vLLM engines (colocate and
  `swift rollout`) take temperature/top_k/top_p/min_p/repetition_penalty from the request as given.
- Telemetry (`editgrpo/*` in swift's metrics) and `completions.jsonl` columns
  `editgrpo_edited`, `editgrpo_ops`, `editgrpo_source`: each target row carries its
  `EditRecord` in `sample.extra` (so it follows the row through swift's resampling); the
  records of the final batch are gathered once, in `_compute_advantages`, and both the
  metrics and the columns are made from that list.
"""
from __future__ import annotations

import copy
import dataclasses
import time
from collections import deque
from dataclasses import replace

import torch
from swift.infer_engine import RequestConfig
from swift.rlhf_trainers import GRPOTrainer
from swift.rlhf_trainers.utils import build_rollout_logps
from swift.utils import get_logger
from transformers import GenerationConfig

from rewards.entities.cache import CachedAnalyzer
from swift_plugins.editgrpo.algorithm.advantage import compute_advantages
from swift_plugins.editgrpo.config import EditGRPOConfig, EditGRPOConfigError
from swift_plugins.editgrpo.peers import chord_telemetry, preflight as peers_preflight
from swift_plugins.editgrpo.edit_ratio import luffy_per_token_loss, luffy_problems, luffy_shaped_ratio, reduce_like_swift
from swift_plugins.editgrpo.algorithm.step import EDITED, EditRecord, check_group_prompts, completion_ids, edit_targets, step_telemetry
from rewards.entities.backends import build_analyzer
from templates.families import family_of_template

logger = get_logger()

def edit_end_id(tokenizer, template_type: str) -> int:
    """The id closing an edited completion: the end token of the template's model family
    (`templates.families`), else the tokenizer's eos (a template outside the table)."""
    family = family_of_template(template_type)
    end_id = tokenizer.convert_tokens_to_ids(family.end_token if family else tokenizer.eos_token)
    if end_id is None or end_id == tokenizer.unk_token_id:
        end_id = tokenizer.eos_token_id
    return end_id


def response_prefix(template, sample) -> str:
    """What swift's template puts before every completion: in the prompt, and prepended to the decoded
    rollout text (Qwen3.5's empty thinking block `<think>\n\n</think>\n\n`; '' for Qwen2.5-VL and Qwen3-VL).
    Edits see the report without it and an edited row's text gets it back; its ids do not, since swift
    re-inserts and masks the prefix ids itself when it encodes completion ids (as for on-policy rows)."""
    from swift.template.template_inputs import StdTemplateInputs

    inputs = StdTemplateInputs(messages=[], chat_template_kwargs=dict(sample.extra.get("chat_template_kwargs") or {}))
    return template._get_response_prefix(inputs) or ""


# completions.jsonl columns, and the sample.extra key of a target row's EditRecord
EDITED_KEY, OPS_KEY, SOURCE_KEY = "editgrpo_edited", "editgrpo_ops", "editgrpo_source"
RECORD_KEY = "editgrpo_record"
# tokens a completion must not carry: the template would expand them as images (cut_at_media_tokens)
MEDIA_TOKENS = ("<|vision_start|>", "<|vision_end|>", "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>")
# GRPOBatch attribute: [B] bool, the micro-batch's edited rows (set with EDITGRPO_EDIT_RATIO=luffy)
EDITED_ROWS = "editgrpo_edited_rows"
_CAPTURE = object()  # marks `_editgrpo_policy_logps` as wanted by the next policy forward
# swift flags whose advantage equals EDITGRPO_ADVANTAGE=mean (R - group mean)
STOCK_MEAN_FLAGS = {"advantage_estimator": "grpo", "scale_rewards": "none"}
# GenerationConfig fields that reshape the sampling distribution and have no swift GRPO flag, at the value
# for which transformers builds no logits processor (None would be refilled from the checkpoint)
UNASKED_SAMPLING_OFF = {"typical_p": 1.0, "epsilon_cutoff": 0.0, "eta_cutoff": 0.0, "no_repeat_ngram_size": 0,
                        "encoder_repetition_penalty": 1.0, "encoder_no_repeat_ngram_size": 0, "min_length": 0,
                        "min_new_tokens": 0}
# logits processors only None switches off: on a checkpoint that sets one, rollouts cannot follow the trained policy
UNSWITCHABLE_PROCESSORS = ("top_h", "sequence_bias", "bad_words_ids", "suppress_tokens", "begin_suppress_tokens",
                           "forced_bos_token_id", "forced_eos_token_id", "exponential_decay_length_penalty",
                           "guidance_scale", "watermarking_config")


def rollout_generation_config(checkpoint: GenerationConfig, request: RequestConfig) -> GenerationConfig:
    """The transformers engine's generation defaults for rollouts: `checkpoint` with every sampling field
    set to what `request` (the run's flags) asks, so nothing is left for swift or transformers to fill
    from the checkpoint or from transformers' own defaults (top_k 0: no top-k warper)."""
    switched_on = [f"{key}={getattr(checkpoint, key)!r}" for key in UNSWITCHABLE_PROCESSORS
                   if getattr(checkpoint, key, None) is not None]
    if switched_on:
        raise EditGRPOConfigError(f"the checkpoint's generation_config.json sets {', '.join(switched_on)}, which "
                                  "the transformers rollout engine cannot switch off: rollouts would not sample "
                                  "from the trained policy; remove them from generation_config.json")
    pinned = copy.deepcopy(checkpoint)
    asked = {"temperature": request.temperature, "top_k": max(request.top_k, 0), "top_p": request.top_p,
             "repetition_penalty": request.repetition_penalty,
             # min_p 0 builds a (no-op) warper: None unless the checkpoint's min_p has to be overridden
             "min_p": request.min_p if request.min_p or checkpoint.min_p is not None else None}
    for key, value in {**asked, **UNASKED_SAMPLING_OFF}.items():
        setattr(pinned, key, value)
    return pinned


def rollout_logps_with_edits(
    rollout_logprobs: list[list[list[float]]],
    edited: list[bool],
    completion_mask: torch.Tensor,
    old_per_token_logps: torch.Tensor,
) -> torch.Tensor | None:
    """[B, T] behaviour log-probs for IS correction: engine log-probs of on-policy rows, the
    recomputed old log-probs of edited rows (ratio 1). None when an on-policy row lacks them."""
    result = old_per_token_logps.detach().to(torch.float32).clone()
    on_policy = [i for i, flag in enumerate(edited) if not flag]
    if on_policy:
        built = build_rollout_logps([rollout_logprobs[i] for i in on_policy], completion_mask[on_policy],
                                    completion_mask.device)
        if built is None:
            return None
        result[on_policy] = built
    return result


class EditGRPOTrainer(GRPOTrainer):
    def __init__(self, *args, **kwargs):
        # validate before swift builds engines and reward models: a bad value stops here, once
        reward_names = [f for f in (kwargs.get("reward_funcs") or []) if isinstance(f, str)]
        self.editgrpo = EditGRPOConfig.from_env(uses_clinical_rewards=any(n.startswith("editgrpo_") for n in reward_names))
        peers_preflight(kwargs)  # gold-guided peers: their data and flags (may drop an unread teacher_prompt)
        super().__init__(*args, **kwargs)
        self._check_swift_settings()
        chord_telemetry(self)
        if not self.args.use_vllm:
            self.engine.generation_config = rollout_generation_config(self.engine.generation_config,
                                                                      self.request_config)
        tokenizer = self.template.tokenizer
        self.editgrpo_media_ids = {i for i in tokenizer.convert_tokens_to_ids(list(MEDIA_TOKENS))
                                   if i is not None and i != tokenizer.unk_token_id}
        self.editgrpo_selection = self.editgrpo.selection_options
        self.editgrpo_edit_options = self.editgrpo.edit_options
        self.editgrpo_analyzer = self._build_analyzer() if self.editgrpo.edits else None
        # every global row's EditRecord (None: not a target) of the batch being logged; set and cleared per batch
        self._editgrpo_rows: list[EditRecord | None] | None = None
        for key in (EDITED_KEY, OPS_KEY, SOURCE_KEY):
            self._logs[key] = deque(maxlen=self.args.generation_batch_size)
        if self.accelerator.is_main_process:
            path = self.editgrpo.save(self.args.output_dir, {"swift": {k: str(getattr(self.args, k, None))
                                                                    for k in (*STOCK_MEAN_FLAGS, "loss_type", "beta")}})
            logger.info(f"EditGRPO configuration: {self.editgrpo.to_dict()} (saved to {path})")

    def _check_swift_settings(self) -> None:
        # (swift sets dynamic_num_samples only at run time, for server multi-turn: `_compute_advantages` checks it)
        if self.multi_turn_scheduler is not None:
            raise EditGRPOConfigError("EditGRPO needs one completion per rollout in groups of num_generations "
                                      "(its edits and advantage): drop --multi_turn_scheduler")
        if self.kl_in_reward:
            raise EditGRPOConfigError("EditGRPO's advantage does not subtract KL from rewards; drop --kl_in_reward")
        actual = {k: str(getattr(self.args, k, None)) for k in STOCK_MEAN_FLAGS}
        if self.editgrpo.advantage == "mean" and actual != STOCK_MEAN_FLAGS:
            logger.warning(f"EditGRPO replaces swift's advantage ({actual}) by EDITGRPO_ADVANTAGE=mean (R - group "
                           f"mean), which equals swift's {STOCK_MEAN_FLAGS}")
        if self.args.loss_type != "dr_grpo":
            logger.warning(f"EditGRPO is specified with the Dr.GRPO loss; this run uses --loss_type {self.args.loss_type}")
        self._check_edit_ratio()

    def _check_edit_ratio(self) -> None:
        if self.editgrpo.edit_ratio != "luffy":
            return
        problems = luffy_problems(loss_type=self.loss_type, use_liger_loss=self.use_liger_loss,
                                  top_entropy_quantile=self.top_entropy_quantile,
                                  off_policy_sequence_mask_delta=self.off_policy_sequence_mask_delta,
                                  chord=getattr(self, "chord_sft_iterator", None) is not None)
        if problems:
            raise EditGRPOConfigError("EDITGRPO_EDIT_RATIO=luffy replaces the edited rows' term of swift's per-token "
                                      "policy loss, which these settings change: " + "; ".join(problems))

    def _build_analyzer(self) -> CachedAnalyzer:
        options = dict(self.editgrpo.analyzer_options)
        if self.editgrpo.analyzer == "rate" and "device" not in options:
            options["device"] = str(self.accelerator.device)
        return CachedAnalyzer(build_analyzer(self.editgrpo.analyzer, **options))

    # --- edits ---------------------------------------------------------------------------------
    def _generate_completions(self, samples):
        samples = super()._generate_completions(samples)
        tokenizer = self.template.tokenizer
        cut = cut_at_media_tokens(samples, self.editgrpo_media_ids, lambda sample, ids: response_prefix(self.template, sample)
                                  + tokenizer.decode(ids, skip_special_tokens=True))
        self._metrics["train" if self.model.training else "eval"]["editgrpo/media_token_cuts"].append(float(cut))
        if self.model.training and self.editgrpo.edits:
            started = time.perf_counter()
            self._apply_edits(samples)
            self._metrics["train"]["editgrpo/hook_seconds"].append(time.perf_counter() - started)
        return samples

    def _apply_edits(self, samples: list) -> None:
        from accelerate.utils import gather_object

        rank = self.accelerator.process_index
        local = [(rank, s.prompt_id, _completion_text(s).removeprefix(response_prefix(self.template, s)),
                  s.extra.get("solution")) for s in samples]
        everything = gather_object(local)
        offset = next((i for i, row in enumerate(everything) if row[0] == rank), len(everything))
        prompt_ids = [row[1] for row in everything]
        check_group_prompts(prompt_ids, self.num_generations)
        records = edit_targets(
            completions=[row[2] for row in everything],
            references=[row[3] for row in everything],
            group_size=self.num_generations,
            targets=range(offset, offset + len(samples)),
            analyzer=self.editgrpo_analyzer,
            selection=self.editgrpo_selection,
            edit_options=self.editgrpo_edit_options,
            step=self.state.global_step,
        )
        by_target = {r.target - offset: r for r in records}
        tokenizer = self.template.tokenizer
        end_id = edit_end_id(tokenizer, self.template.template_meta.template_type)
        for index, sample in enumerate(samples):
            record = by_target.get(index)
            sample.extra[RECORD_KEY] = record
            if _edited(sample):
                ids, text = completion_ids(
                    record.text,
                    encode=lambda t: tokenizer.encode(t, add_special_tokens=False),
                    decode=lambda i: tokenizer.decode(i, skip_special_tokens=True),
                    end_id=end_id,
                    max_length=self.max_completion_length,
                )
                sample.messages[-1]["content"] = response_prefix(self.template, sample) + text
                sample.response_token_ids = ids
                sample.response_loss_mask = []
                sample.rollout_logprobs = []
                sample.routed_experts = None  # MoE routing recorded for the replaced tokens
                sample.finish_reason = "stop"
                sample.add_eos = False

    # --- rollout importance sampling -------------------------------------------------------------
    def _prepare_batch_inputs(self, samples):
        batches = super()._prepare_batch_inputs(samples)
        luffy = self.editgrpo.edit_ratio == "luffy"
        reads_rollout_logps = (self.rollout_importance_sampling_mode is not None or self.log_rollout_offpolicy_metrics
                               or self.off_policy_sequence_mask_delta is not None)  # swift's three readers
        if not (luffy or reads_rollout_logps):
            return batches
        for chunk, encoded in zip(self.split_by_mini_batches(samples), batches):
            grpo_batch = encoded["grpo_batch"]
            edited = [_edited(s) for s in chunk]
            if luffy:
                setattr(grpo_batch, EDITED_ROWS,
                        torch.tensor(edited, dtype=torch.bool, device=grpo_batch.completion_mask.device))
            if reads_rollout_logps and grpo_batch.rollout_per_token_logps is None and any(edited):
                grpo_batch.rollout_per_token_logps = rollout_logps_with_edits(
                    [s.rollout_logprobs for s in chunk], edited, grpo_batch.completion_mask,
                    grpo_batch.old_per_token_logps)
        return batches

    # --- the loss of edited rows (EDITGRPO_EDIT_RATIO=luffy) ---------------------------------------
    def _get_per_token_logps_and_entropies(self, *args, **kwargs):
        result = super()._get_per_token_logps_and_entropies(*args, **kwargs)
        if getattr(self, "_editgrpo_policy_logps", None) is _CAPTURE:  # the loss's policy forward (with grad)
            self._editgrpo_policy_logps = result[0]
        return result

    def _compute_loss_and_metrics(self, model, model_inputs, grpo_batch):
        if self.editgrpo.edit_ratio != "luffy":
            return super()._compute_loss_and_metrics(model, model_inputs, grpo_batch)
        completion_mask = grpo_batch.completion_mask
        edited = getattr(grpo_batch, EDITED_ROWS, None)
        if edited is None:
            edited = torch.zeros(completion_mask.shape[0], dtype=torch.bool, device=completion_mask.device)
        advantages = grpo_batch.advantages
        rows = edited.view(-1, *([1] * (advantages.dim() - 1)))
        # A = 0 makes swift's policy term of a row exactly 0 (-min(r*0, clip(r)*0)) and no clipping count;
        # a copy, so the buffered batch keeps its advantages for the next iteration
        on_policy_only = dataclasses.replace(grpo_batch, advantages=torch.where(rows, torch.zeros_like(advantages),
                                                                                advantages))
        self._editgrpo_policy_logps = _CAPTURE
        try:
            loss, metrics_data = super()._compute_loss_and_metrics(model, model_inputs, on_policy_only)
            per_token_logps = self._editgrpo_policy_logps
        finally:
            self._editgrpo_policy_logps = None
        if per_token_logps is _CAPTURE or per_token_logps is None:
            raise RuntimeError("swift's loss computed no policy log-probs through _get_per_token_logps_and_entropies")
        mask = completion_mask
        if self.overlong_filter:  # swift's loss drops truncated rows (edited rows are never truncated)
            mask = mask & ~grpo_batch.truncated_mask.unsqueeze(-1)
        edited_tokens = mask & edited.unsqueeze(-1)
        gamma = self.editgrpo.luffy_gamma
        term = luffy_per_token_loss(per_token_logps, advantages, gamma) * edited_tokens
        normalizer = (grpo_batch.num_items_in_batch / self.accelerator.num_processes
                      if self.loss_type == "dapo" else None)
        extra = reduce_like_swift(term, mask, self.loss_type, max_completion_length=self.max_completion_length,
                                  token_normalizer=normalizer)
        if self.loss_type == "dapo":  # swift compensates its window-normalised policy loss the same way
            extra = self._undo_gradient_accumulation_scaling(extra)
        shaped = luffy_shaped_ratio(per_token_logps.detach().float(), gamma)
        local = torch.stack([(shaped * edited_tokens).sum(), edited_tokens.sum().float()]).unsqueeze(0)
        total = self.accelerator.gather(local).sum(0)  # every rank, edited rows or not
        if total[1] > 0:
            mode = "train" if self.model.training else "eval"
            self._metrics[mode]["editgrpo/luffy_ratio_mean"].append((total[0] / total[1]).item())
        return loss + extra, metrics_data

    # --- rewards, advantages, telemetry ----------------------------------------------------------
    def _compute_rewards_per_func(self, samples):
        from accelerate.utils import gather_object

        rewards_per_func = super()._compute_rewards_per_func(samples)
        mode = "train" if self.model.training else "eval"
        for func in self.reward_funcs:
            components = getattr(func, "last_components", None)
            if isinstance(components, dict):  # the clinical ORM's parts (rewards.orms)
                for name, values in sorted(components.items()):
                    everything = gather_object(list(values))
                    if everything:
                        self._metrics[mode][f"rewards/{name}/mean"].append(sum(everything) / len(everything))
        return rewards_per_func

    def _compute_advantages(self, samples, rewards_per_func, batch_encoded_inputs):
        from accelerate.utils import gather_object

        if self.dynamic_num_samples:  # set by swift at run time for server-side multi-turn rollouts
            raise EditGRPOConfigError("EditGRPO's advantage needs groups of num_generations consecutive rollouts; "
                                      "this run has dynamic sample counts (server multi-turn)")
        super()._compute_advantages(samples, rewards_per_func, batch_encoded_inputs)  # swift's reward metrics
        mode = "train" if self.model.training else "eval"
        group_size = self.num_generations if mode == "train" else self.num_generations_eval
        rewards = (rewards_per_func * self.reward_weights.unsqueeze(0)).nansum(dim=1)
        advantages = compute_advantages(rewards, group_size, self.editgrpo.advantage)
        self._editgrpo_rows = None
        if mode == "train" and self.editgrpo.edits:
            self._editgrpo_rows = gather_object([s.extra.get(RECORD_KEY) for s in samples])
            records = [replace(r, target=row) for row, r in enumerate(self._editgrpo_rows) if r is not None]
            for key, value in step_telemetry(records, len(self._editgrpo_rows), rewards.tolist()).items():
                self._metrics[mode][key].append(value)
        return advantages

    def _log_rollout(self, samples) -> None:
        from accelerate.utils import gather_object

        super()._log_rollout(samples)
        rows = self._editgrpo_rows or [None] * sum(gather_object([len(samples)]))
        for record in rows:
            edited = record is not None and record.status == EDITED
            self._logs[EDITED_KEY].append(edited)
            self._logs[OPS_KEY].append(list(record.ops) if edited else [])
            self._logs[SOURCE_KEY].append(record.source if edited else -1)
        self._editgrpo_rows = None


def cut_at_media_tokens(samples: list, media_ids: set[int], text_of) -> int:
    """Cut each completion before the first media placeholder token it sampled; returns how many were cut.

    swift re-encodes a completion's text with the template, which expands `<|image_pad|>` and its
    kin as images: one sampled placeholder makes the image count disagree and stops the whole run
    (`masked_scatter`: "Number of elements of source < number of ones in mask"). A cut completion
    keeps its sampled tokens and engine log-probs up to that point and counts as truncated
    (`finish_reason='length'`), so `--overlong_filter` can drop it. `text_of(sample, ids)` is the
    rollout text of the kept ids (with the template's response prefix, as swift writes it)."""
    cut = 0
    for sample in samples:
        ids = list(sample.response_token_ids or [])
        first = next((k for k, token in enumerate(ids) if token in media_ids), None)
        if first is None:
            continue
        sample.response_token_ids = ids[:first]
        if sample.rollout_logprobs:
            sample.rollout_logprobs = sample.rollout_logprobs[:first]
        if sample.response_loss_mask:
            sample.response_loss_mask = sample.response_loss_mask[:first]
        sample.messages[-1]["content"] = text_of(sample, ids[:first])
        sample.routed_experts = None  # MoE routing recorded for the dropped tokens too
        sample.finish_reason = "length"
        cut += 1
    return cut


def _edited(sample) -> bool:
    record = sample.extra.get(RECORD_KEY)
    return record is not None and record.status == EDITED


def _completion_text(sample) -> str:
    content = sample.messages[-1].get("content") if sample.messages else ""
    return content if isinstance(content, str) else ""

