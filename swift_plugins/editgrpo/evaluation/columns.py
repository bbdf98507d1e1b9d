"""The paper's metric table: its columns (clinical ones average into Avg) and the `--metrics` groups."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from rewards.config import REWARD_METRICS


@dataclass(frozen=True)
class Column:
    key: str  # key in metrics.json / csv / per_sample
    label: str  # header in the paper's table
    clinical: bool  # part of Avg


# The paper's column order (Avg is computed, not scored), then the lexical extras.
CLINICAL_COLUMNS: tuple[Column, ...] = (
    Column("chexbert_micro_f1_14", "Mi-14", True),
    Column("chexbert_macro_f1_14", "Ma-14", True),
    Column("chexbert_micro_f1_5", "Mi-5", True),
    Column("chexbert_macro_f1_5", "Ma-5", True),
    Column("radgraph_partial_f1", "RadGraph", True),
    Column("ratescore", "RaTE", True),
    Column("green", "GREEN", True),
)
AVG_COLUMN = Column("avg", "Avg", False)
EXTRA_COLUMNS: tuple[Column, ...] = (Column("bleu4", "BLEU-4", False), Column("rouge_l", "ROUGE-L", False))
TABLE_COLUMNS: tuple[Column, ...] = (*CLINICAL_COLUMNS, AVG_COLUMN, *EXTRA_COLUMNS)

# `--metrics` names -> the columns each one fills.
METRIC_GROUPS: dict[str, tuple[str, ...]] = {
    "chexbert": ("chexbert_micro_f1_14", "chexbert_macro_f1_14", "chexbert_micro_f1_5", "chexbert_macro_f1_5"),
    "radgraph": ("radgraph_partial_f1",),
    "ratescore": ("ratescore",),
    "green": ("green",),
    "bleu4": ("bleu4",),
    "rouge_l": ("rouge_l",),
}
MODEL_METRICS: tuple[str, ...] = REWARD_METRICS  # the groups rewards.build_scorers makes


def average_clinical(values: Mapping[str, float | None]) -> tuple[float | None, list[str]]:
    """Avg = mean of the clinical columns that have a value (None when none has); also says which."""
    present = [column.key for column in CLINICAL_COLUMNS if values.get(column.key) is not None]
    if not present:
        return None, []
    return sum(float(values[key]) for key in present) / len(present), present
