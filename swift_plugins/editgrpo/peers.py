"""ms-swift 4.6's gold-guided peers of EditGRPO: their flags (`PEER_FLAGS`), how they combine
(`resolve_method`), and the preflight of their data (`preflight`, `check_rows`).

Each peer learns from the gold report through swift's own code, one flag away:

- **RLSD** (`--advantage_reweight rlsd`), **SDAR** (`--sdar_loss_coef`) and **OPD-RL**
  (`--teacher_kl_coef`) are on-policy self-distillation: swift re-scores every rollout with the
  current policy shown the row's `teacher_prompt` (the student prompt plus the gold FINDINGS,
  `templates.prompt.build_teacher_prompt`) and uses the per-token log-prob gap teacher − student:
  RLSD reweights the advantage inside each rollout, SDAR adds a gated distillation loss, OPD-RL
  adds `teacher_kl_coef` × gap to the advantage.
- **CHORD** (`--chord_sft_dataset` and the `--chord_mu_*` schedule) mixes an SFT loss on the gold
  reports into the GRPO loss: (1 − μ) GRPO + μ SFT.

Two swift behaviours this module exists for:

- A `teacher_prompt` column alone turns *any* GRPO run into OPD-RL (dynamic self-distillation at
  swift's default `teacher_kl_coef` 1.0). The converters write the column, so the recipes pass
  `--teacher_kl_coef 0` unless a peer reads the teacher, and `preflight` drops the column from a
  run that reads no teacher signal: swift would still spend a forward pass per micro-batch on it.
- Without the column, RLSD and SDAR silently train plain GRPO, and CHORD without its batch size or
  μ schedule fails inside swift (a DataLoader error, or a TypeError at the first step).
  `preflight` stops such a run before swift builds its engines, naming what is missing.

`python -m swift_plugins.editgrpo.peers METHOD --dataset D` prints what `run/peers.sh` needs (the
edits switch, then one swift argument per line) after checking D's first rows; every refused
combination exits with code 2 and the reason.
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from datasets_registry.records import ConversionError
from templates.prompt import IMAGE_TAG

TEACHER_COLUMN = "teacher_prompt"
EDITS = "editgrpo"  # the METHOD part that turns the edits on (EditGRPO rather than Dr.GRPO as the base)
ROWS_CHECKED = 8  # first rows of a data set the preflight reads
CHORD_SFT_DATASET = "--chord_sft_dataset"
CHORD_REQUIRED = ("chord_sft_per_device_train_batch_size", "chord_mu_warmup_steps", "chord_mu_decay_steps",
                  "chord_mu_peak", "chord_mu_valley")
CONVERT_HINT = ("re-convert it with this version (`editgrpo convert <dataset> --src ... --out ...`; the demo's "
                "synthetic task: `editgrpo demo --restart`), which writes the column: the student prompt plus "
                "the gold FINDINGS")

# Each peer's own swift flags at its reference settings (swift's defaults, CHORD as in swift's example
# script); the paper's shared settings are run/rl_common.sh's. CHORD also needs --chord_sft_dataset,
# the run's own training data (`resolve_method` adds it).
PEER_FLAGS: dict[str, tuple[str, ...]] = {
    "rlsd": ("--advantage_reweight", "rlsd", "--rlsd_lambda", "0.5", "--rlsd_reweight_clip_range", "0.2"),
    "sdar": ("--sdar_loss_coef", "0.1", "--sdar_gate_beta", "5.0"),
    "opd": ("--teacher_kl_coef", "1.0"),
    "chord": ("--chord_sft_per_device_train_batch_size", "1", "--chord_mu_warmup_steps", "0",
              "--chord_mu_decay_steps", "200", "--chord_mu_peak", "0.9", "--chord_mu_valley", "0.05",
              "--chord_enable_phi_function", "false"),
}
TEACHER_PEERS = frozenset({"rlsd", "sdar", "opd"})  # the peers that read `teacher_prompt`
# The combinations the recipes and the CI runs cover.
PEER_METHODS: tuple[str, ...] = ("rlsd", "sdar", "opd", "chord", "editgrpo+rlsd", "editgrpo+chord")
# Pairs ms-swift refuses, or accepts while ignoring one side: an error before any model loads.
REFUSED: dict[frozenset[str], str] = {
    frozenset({"rlsd", "sdar"}): "ms-swift refuses it (RLHFArguments._check_sdar: 'sdar_loss_coef>0 cannot be "
                                 "combined with advantage_reweight=rlsd'): pick one teacher-distillation mechanism",
    frozenset({"rlsd", "opd"}): "ms-swift would ignore the OPD-RL term: under advantage_reweight=rlsd the teacher "
                                "gap reweights the advantage and teacher_kl_coef is never added",
    frozenset({"sdar", "opd"}): "ms-swift would ignore the OPD-RL term: with sdar_loss_coef>0 the teacher gap goes "
                                "into the SDAR loss and teacher_kl_coef is never added to the advantage",
}


class PeerError(ValueError):
    """A peer's data or flags cannot give the method it names; raised before swift builds engines."""


@dataclass(frozen=True)
class PeerRun:
    """What one METHOD asks of swift: the edits switch, the peers' flags, whether rows need `teacher_prompt`."""

    method: str
    edits: bool
    peers: tuple[str, ...]
    flags: tuple[str, ...]

    @property
    def teacher(self) -> bool:
        return bool(TEACHER_PEERS.intersection(self.peers))


def resolve_method(method: str, train_dataset: str | None = None) -> PeerRun:
    """`editgrpo+rlsd` -> edits on + RLSD's flags. Parts are `+`-joined: `editgrpo` (optional) and peers."""
    parts = [part.strip() for part in method.split("+")]
    unknown = [part for part in parts if part not in PEER_FLAGS and part != EDITS]
    if unknown or not parts or len(set(parts)) != len(parts):
        raise PeerError(f"METHOD={method!r}: want '+'-joined parts from {EDITS!r} and {sorted(PEER_FLAGS)}, "
                        f"each once (e.g. {', '.join(PEER_METHODS)})")
    peers = tuple(part for part in parts if part != EDITS)
    if not peers:
        raise PeerError(f"METHOD={method!r} names no peer: EditGRPO alone is run/editgrpo.sh")
    for pair, reason in REFUSED.items():
        if pair <= set(peers):
            raise PeerError(f"METHOD={method!r} combines {' and '.join(sorted(pair))}: {reason}")
    flags = [flag for peer in peers for flag in PEER_FLAGS[peer]]
    if "chord" in peers:
        if not train_dataset:
            raise PeerError("CHORD needs the gold SFT data: pass the training data set (--dataset)")
        flags += [CHORD_SFT_DATASET, train_dataset]
    return PeerRun(method, EDITS in parts, peers, tuple(flags))


# --------------------------------------------------------------------------- the run's swift arguments

def teacher_signal(args: Any) -> str | None:
    """Which swift mechanism reads the teacher's log-probs in this run (`args`: swift's GRPO config):
    'rlsd', 'sdar', 'opd' (any non-zero teacher_kl_coef, swift's default 1.0 included) or None."""
    if getattr(args, "advantage_reweight", None) == "rlsd":
        return "rlsd"
    if (getattr(args, "sdar_loss_coef", 0) or 0) > 0:
        return "sdar"
    if getattr(args, "teacher_kl_coef", 0):
        return "opd"
    return None


def check_chord(args: Any) -> None:
    """swift 4.6 has no defaults for CHORD's batch size and μ schedule and checks none of them."""
    if not getattr(args, "chord_sft_dataset", None):
        return
    missing = [f"--{name}" for name in CHORD_REQUIRED if getattr(args, name, None) is None]
    if missing:
        raise PeerError(f"CHORD (--chord_sft_dataset) needs {', '.join(missing)}: ms-swift 4.6 has no default for "
                        "them and fails inside its trainer (batch size: a DataLoader error; μ schedule: a TypeError "
                        f"at the first step). run/peers.sh sets them ({' '.join(PEER_FLAGS['chord'])})")


def check_rows(rows: Sequence[Mapping[str, Any]], needed_by: str, source: str) -> None:
    """Rows a teacher peer trains on must carry a usable `teacher_prompt` (the first rows are checked)."""
    if not rows:
        return
    without = [i for i, row in enumerate(rows) if not isinstance(row.get(TEACHER_COLUMN), str)
               or not row[TEACHER_COLUMN].strip()]
    if without:
        raise PeerError(f"{needed_by} needs the `{TEACHER_COLUMN}` column, and {source} has none "
                        f"(row(s) {without[:5]} of the first {len(rows)}): {CONVERT_HINT}")
    for i, row in enumerate(rows):
        images = row.get("images") or []
        if row[TEACHER_COLUMN].count(IMAGE_TAG) != len(images):
            raise PeerError(f"{source} row {i}: `{TEACHER_COLUMN}` has {row[TEACHER_COLUMN].count(IMAGE_TAG)} "
                            f"{IMAGE_TAG} tag(s) for {len(images)} image(s); swift keeps the row's images for the "
                            f"teacher, so its prompt must carry the student's tags: {CONVERT_HINT}")


def _first_rows(dataset: Any, n: int = ROWS_CHECKED) -> list[dict]:
    if dataset is None:
        return []
    try:
        count = min(n, len(dataset))
    except TypeError:  # streaming: no length
        return [row for row, _ in zip(dataset, range(n))]
    return [dataset[i] for i in range(count)]


def _columns(dataset: Any) -> list[str]:
    return list(getattr(dataset, "column_names", None) or [])


def preflight(trainer_kwargs: dict) -> str | None:
    """Check (and adjust) what swift hands the GRPO trainer, before it builds engines; returns the teacher signal.

    `trainer_kwargs` is the trainer's keyword arguments as swift passes them (`args`, `train_dataset`,
    `eval_dataset`, teacher settings). An explicit teacher (--teacher_model/--teacher_model_server) is
    left to swift: what it is shown is the user's choice.
    """
    from swift.utils import get_logger

    logger = get_logger()
    args = trainer_kwargs["args"]
    check_chord(args)
    if (trainer_kwargs.get("teacher_model") is not None or trainer_kwargs.get("teacher_model_server")
            or trainer_kwargs.get("teacher_use_disable_adapter")):
        return "explicit"
    signal = teacher_signal(args)
    train = trainer_kwargs.get("train_dataset")
    has_column = TEACHER_COLUMN in _columns(train)
    if signal in ("rlsd", "sdar"):
        flag = "--advantage_reweight rlsd" if signal == "rlsd" else f"--sdar_loss_coef {args.sdar_loss_coef}"
        check_rows(_first_rows(train), f"{signal.upper()} ({flag})", "the training data set")
    elif signal == "opd" and has_column:
        logger.warning(f"OPD-RL is on: the data set has a `{TEACHER_COLUMN}` column, so ms-swift scores every rollout "
                       f"with the policy shown it and adds {args.teacher_kl_coef} x (teacher - student log-prob) "
                       "per token to the advantage; pass --teacher_kl_coef 0 to train without it")
    elif signal is None and has_column:
        for key in ("train_dataset", "eval_dataset"):
            if TEACHER_COLUMN in _columns(trainer_kwargs.get(key)):
                trainer_kwargs[key] = trainer_kwargs[key].remove_columns(TEACHER_COLUMN)
        logger.info(f"`{TEACHER_COLUMN}` dropped from the data: no flag of this run reads a teacher signal "
                    "(--teacher_kl_coef 0, no RLSD or SDAR)")
    return signal


def chord_telemetry(trainer: Any) -> None:
    """Logs CHORD's μ as `editgrpo/chord_mu` each step (swift 4.6 logs nothing of CHORD), from swift's
    own schedule and only on a trainer whose CHORD SFT iterator swift has built."""
    if getattr(trainer, "chord_sft_iterator", None) is None:
        return
    from swift.rlhf_trainers.utils import mu_schedule_function
    from transformers import TrainerCallback

    class ChordMu(TrainerCallback):
        def on_step_begin(self, args, state, control, **kwargs):
            trainer._metrics["train"]["editgrpo/chord_mu"].append(mu_schedule_function(
                state.global_step, args.chord_mu_warmup_steps, args.chord_mu_decay_steps, args.chord_mu_peak,
                args.chord_mu_valley))

    trainer.add_callback(ChordMu())


# --------------------------------------------------------------------------- recipe helper

def dataset_rows(dataset: str, n: int = ROWS_CHECKED) -> tuple[list[dict], str] | None:
    """The first rows of a `--dataset` value this project can read (a jsonl path or a registered
    `*_editgrpo` name, `#N` and subsets allowed), with a description; None for anything else."""
    from datasets_registry.jsonl import read_jsonl
    from datasets_registry.registration import DATASET_NAMES, split_files

    value = dataset.split("#", 1)[0]
    name, _, subsets = value.partition(":")
    if name in DATASET_NAMES:
        paths = split_files(name, subsets.split("/") if subsets else None)
    elif value.endswith(".jsonl") and Path(value).is_file():
        paths = [Path(value)]
    else:
        return None
    rows = []
    for row in read_jsonl(paths[0]):
        rows.append(row)
        if len(rows) >= n:
            break
    return rows, str(paths[0])


def main(argv: Iterable[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m swift_plugins.editgrpo.peers",
                                     description="Print run/peers.sh's settings for METHOD: 'on'/'off' (the edits), "
                                                 "then one swift argument per line.")
    parser.add_argument("method", help=f"'+'-joined parts from {EDITS!r} and {sorted(PEER_FLAGS)}")
    parser.add_argument("--dataset", help="the run's --dataset (checked for `teacher_prompt`; CHORD's SFT data)")
    parser.add_argument("--no-data-check", action="store_true", help="do not read the data set (DRY_RUN)")
    options = parser.parse_args(list(argv) if argv is not None else None)
    try:
        run = resolve_method(options.method, options.dataset)
        if run.teacher and options.dataset and not options.no_data_check:
            found = dataset_rows(options.dataset)
            if found is not None:
                check_rows(found[0], f"METHOD={run.method}", found[1])
    except (PeerError, ConversionError, OSError, ValueError) as error:  # ConversionError: no converted files
        print(f"run/peers.sh: {error}", file=sys.stderr)
        return 2
    print("on" if run.edits else "off")
    print("\n".join(run.flags))
    return 0


if __name__ == "__main__":
    sys.exit(main())
