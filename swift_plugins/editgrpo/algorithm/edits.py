"""EditGRPO's post-rollout edit of one generated report towards its reference (docs/algorithm.md §3-§4).

`edit_report(gen, ref, options, rng)` takes two `ReportAnalysis` (from any analyzer), finds the
wrong/missing/contradicting entities (`matching`), and applies up to `ops_per_rollout`
successful sentence operations, each trying in order and stopping at the first success:

1. ``contradiction`` (on by default only in ``match="paper"``): a random contradiction's
   generated sentence is replaced by the reference sentence holding the conflicting entity;
2. ``fp_replace``: FP entities in text order; the FP sentence x is replaced by the reference
   sentence y != x (with entities, not yet used) maximising
   ``mean_{e in E_fp} max(0, max_{e' in y} cos(e, e'))`` if that score >= tau (first y on ties);
   ``E_fp`` is the trigger entity (``fp_scope="trigger"``, reference code) or every FP entity of
   x (``"sentence"``, the paper);
3. ``fp_delete``: the first FP sentence not yet touched is deleted;
4. ``fn_add``: a random FN entity whose reference sentence is unused; its sentence is appended
   unless already present (then the operation fails, as in the reference code);
5. ``empty_guard`` (not counted in the budget): if nothing is left, an unused FN sentence is
   appended; failing that the rollout is left unedited. A sentence is never touched twice
   (by position or by text: a sentence inserted by one operation is not replaced later).
   As in the reference, a replacement does not check whether y already occurs elsewhere in
   the report, so an edit can repeat a generated sentence.

Guards and bad input (defined, never an exception):

* a reference with no sentences (empty/whitespace-only) -> unchanged: nothing to learn from;
* a generated report identical to the reference (after normalisation) -> unchanged: an edit
  can only make it worse (without this guard the ``affinity`` mode would rewrite it, since
  negated/ANATOMY entities never reach tau against themselves);
* an empty or whitespace-only generated report has no entities, so every reference entity is
  FN and one reference sentence is appended (the reference code leaves it unedited); if the
  reference has no entities either, nothing applies and it stays unedited. An edit never
  leaves an empty report: it is undone instead (step 5);
* entities whose text lies in no sentence (index -1, e.g. a NER span across a sentence
  boundary) are ignored, as the reference drops them;
* a text without terminator is one sentence; non-ASCII and very long reports are handled
  like any other (cost is linear in sentences x entities).

Every output sentence is a sentence of the generated or the reference report
(`EditResult.sentences`), and `EditResult.text` is them joined by `join_report`: single spaces,
and "." after a sentence without end mark (one a line break ended) unless it is the last, so
the edit never turns two sentences into one run-on sentence.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Literal, get_args

import numpy as np

from rewards.entities.types import ReportAnalysis
from swift_plugins.editgrpo.algorithm.matching import DEFAULT_TAU, MATCH_MODES, MatchResult, match_entities
from templates.report import join_report

OpName = Literal["contradiction", "fp_replace", "fp_delete", "fn_add", "empty_guard"]
OP_NAMES: tuple[OpName, ...] = get_args(OpName)
FP_SCOPES: tuple[str, ...] = ("trigger", "sentence")


@dataclass(frozen=True)
class EditOptions:
    """The rule's knobs; defaults follow the reference code (docs/algorithm.md §3-§4).

    ``contradictions``: None = on for ``match="paper"``, off for ``"affinity"``.
    ``seed``: used when `edit_report` gets no rng.
    """

    ops_per_rollout: int = 1
    tau: float = DEFAULT_TAU
    match: str = "affinity"
    fp_scope: str = "trigger"
    contradictions: bool | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        if self.ops_per_rollout < 0:
            raise ValueError(f"ops_per_rollout must be >= 0, got {self.ops_per_rollout}")
        if not 0.0 <= self.tau <= 1.0:
            raise ValueError(f"tau must be in [0, 1], got {self.tau}")
        if self.match not in MATCH_MODES:
            raise ValueError(f"match must be one of {MATCH_MODES}, got {self.match!r}")
        if self.fp_scope not in FP_SCOPES:
            raise ValueError(f"fp_scope must be one of {FP_SCOPES}, got {self.fp_scope!r}")

    @property
    def contradiction_op(self) -> bool:
        return self.match == "paper" if self.contradictions is None else self.contradictions


@dataclass(frozen=True)
class EditOp:
    """One successful operation.

    ``old_sentence`` is "" for additions, ``new_sentence`` "" for deletions; ``trigger`` is the
    entity text that caused it (generated side for contradiction/FP, reference side for FN);
    ``score``: the replacement score (fp_replace), the raw cosine (contradiction), otherwise
    the trigger's best match score against the other side (-inf when that side is empty).
    """

    op: OpName
    old_sentence: str
    new_sentence: str
    trigger: str
    score: float

    def to_dict(self) -> dict:
        return {"op": self.op, "old_sentence": self.old_sentence, "new_sentence": self.new_sentence,
                "trigger": self.trigger, "score": None if not np.isfinite(self.score) else float(self.score)}


@dataclass(frozen=True)
class EditResult:
    text: str  # the edited report (the normalised generated text when unchanged)
    changed: bool
    ops: tuple[EditOp, ...] = ()
    sentences: tuple[str, ...] = field(default=(), compare=False)  # what `text` joins (join_report)


@dataclass
class _State:
    """The report being edited: gen sentences by original index (None = deleted) + appended ones."""

    slots: list[str | None]
    appended: list[str]
    touched_slots: set[int]
    used_texts: set[str]

    def sentences(self) -> list[str]:
        return [s for s in self.slots if s is not None] + self.appended

    def present(self, sentence: str) -> bool:
        return sentence in self.slots or sentence in self.appended

    def touchable(self, slot: int) -> bool:
        """Neither this sentence nor its text (e.g. inserted elsewhere by an earlier op) was touched."""
        return slot not in self.touched_slots and self.slots[slot] not in self.used_texts


def edit_report(
    gen: ReportAnalysis,
    ref: ReportAnalysis,
    options: EditOptions | None = None,
    rng: random.Random | None = None,
) -> EditResult:
    """Minimally edit the generated report towards the reference (module docstring for the rules)."""
    options = options or EditOptions()
    rng = rng if rng is not None else random.Random(options.seed)
    unchanged = EditResult(gen.text, False, (), tuple(gen.sentences))
    if not ref.sentences or gen.text == ref.text or options.ops_per_rollout == 0:
        return unchanged

    gen_idx = [i for i, e in enumerate(gen.entities) if 0 <= e.sentence < len(gen.sentences)]
    ref_idx = [j for j, e in enumerate(ref.entities) if 0 <= e.sentence < len(ref.sentences)]
    match = match_entities(
        [gen.entities[i].type for i in gen_idx], _rows(gen.embeddings, gen_idx),
        [ref.entities[j].type for j in ref_idx], _rows(ref.embeddings, ref_idx),
        mode=options.match, tau=options.tau,
    )
    context = _Context(gen, ref, gen_idx, ref_idx, match, options, rng)
    state = _State(list(gen.sentences), [], set(), set())
    ops: list[EditOp] = []
    for _ in range(options.ops_per_rollout):
        op = context.next_op(state)
        if op is None:
            break
        ops.append(op)
    if ops and not state.sentences():
        guard = context.fn_add(state, "empty_guard")
        if guard is None:
            return unchanged
        ops.append(guard)
    if not ops:  # re-joining alone (end marks added) is not an edit
        return unchanged
    sentences = tuple(state.sentences())
    text = join_report(sentences)
    if text == gen.text:
        return unchanged
    return EditResult(text, True, tuple(ops), sentences)


@dataclass
class _Context:
    gen: ReportAnalysis
    ref: ReportAnalysis
    gen_idx: list[int]  # matching index -> gen.entities index
    ref_idx: list[int]
    match: MatchResult
    options: EditOptions
    rng: random.Random
    _sentence_cache: tuple[list[int], np.ndarray] | None = None

    def gen_sentence(self, k: int) -> int:
        return self.gen.entities[self.gen_idx[k]].sentence

    def ref_sentence(self, k: int) -> int:
        return self.ref.entities[self.ref_idx[k]].sentence

    def next_op(self, state: _State) -> EditOp | None:
        attempts = (self.contradiction, self.fp_replace, self.fp_delete, self.fn_add)
        if not self.options.contradiction_op:
            attempts = attempts[1:]
        for attempt in attempts:
            op = attempt(state)
            if op is not None:
                return op
        return None

    def contradiction(self, state: _State) -> EditOp | None:
        candidates = [
            (i, j) for i, j in self.match.contradictions
            if state.touchable(self.gen_sentence(i))
            and self.ref.sentences[self.ref_sentence(j)] not in state.used_texts
            and self.ref.sentences[self.ref_sentence(j)] != self.gen.sentences[self.gen_sentence(i)]
        ]
        if not candidates:
            return None
        i, j = self.rng.choice(candidates)
        return self._replace(state, i, self.ref.sentences[self.ref_sentence(j)], "contradiction",
                             float(self.match.cosine[i, j]))

    def fp_replace(self, state: _State) -> EditOp | None:
        ref_slots, sentence_max = self._sentence_max()
        if not ref_slots:
            return None
        for i in self.match.false_positives:
            slot = self.gen_sentence(i)
            if not state.touchable(slot):
                continue
            x = self.gen.sentences[slot]
            scope = [i] if self.options.fp_scope == "trigger" else \
                [k for k in self.match.false_positives if self.gen_sentence(k) == slot]
            scores = sentence_max[scope].mean(axis=0)
            allowed = [n for n, y_slot in enumerate(ref_slots)
                       if self.ref.sentences[y_slot] != x and self.ref.sentences[y_slot] not in state.used_texts]
            if not allowed:
                continue
            best = max(allowed, key=lambda n: (scores[n], -n))  # first sentence on ties
            if scores[best] >= self.options.tau:
                return self._replace(state, i, self.ref.sentences[ref_slots[best]], "fp_replace", float(scores[best]))
        return None

    def fp_delete(self, state: _State) -> EditOp | None:
        for i in self.match.false_positives:
            slot = self.gen_sentence(i)
            if not state.touchable(slot):
                continue
            old = state.slots[slot]
            state.slots[slot] = None
            state.touched_slots.add(slot)
            state.used_texts.add(old)
            return EditOp("fp_delete", old, "", self.gen.entities[self.gen_idx[i]].text,
                          float(self.match.gen_best[i]))
        return None

    def fn_add(self, state: _State, op_name: OpName = "fn_add") -> EditOp | None:
        candidates = [j for j in self.match.false_negatives
                      if self.ref.sentences[self.ref_sentence(j)] not in state.used_texts]
        if not candidates:
            return None
        j = self.rng.choice(candidates)
        sentence = self.ref.sentences[self.ref_sentence(j)]
        if state.present(sentence):
            return None
        state.appended.append(sentence)
        state.used_texts.add(sentence)
        return EditOp(op_name, "", sentence, self.ref.entities[self.ref_idx[j]].text, float(self.match.ref_best[j]))

    def _replace(self, state: _State, i: int, new: str, op_name: OpName, score: float) -> EditOp:
        slot = self.gen_sentence(i)
        old = state.slots[slot]
        state.slots[slot] = new
        state.touched_slots.add(slot)
        state.used_texts.update((old, new))
        return EditOp(op_name, old, new, self.gen.entities[self.gen_idx[i]].text, score)

    def _sentence_max(self) -> tuple[list[int], np.ndarray]:
        """Reference sentences holding entities (in order) and, per generated entity,
        max(0, best raw cosine) against each of them: (n_gen, n_sentences)."""
        if self._sentence_cache is None:
            slots = sorted({self.ref_sentence(k) for k in range(len(self.ref_idx))})
            columns = [[k for k in range(len(self.ref_idx)) if self.ref_sentence(k) == slot] for slot in slots]
            cosine = self.match.cosine
            table = np.stack([cosine[:, members].max(axis=1) for members in columns], axis=1) if slots \
                else np.zeros((cosine.shape[0], 0))
            self._sentence_cache = (slots, np.maximum(table, 0.0))
        return self._sentence_cache


def _rows(embeddings: np.ndarray, indices: list[int]) -> np.ndarray:
    array = np.asarray(embeddings)
    if len(indices) == len(array):
        return array
    if not indices:
        return np.zeros((0, array.shape[1] if array.ndim == 2 else 1), dtype=np.float32)
    return array[indices]
