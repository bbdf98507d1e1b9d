"""Evaluation of generated reports: the paper's metric table over one or more swift infer runs.

columns (the table), results (reading/aligning result files), text (cleaning), lexical (BLEU,
ROUGE-L), runners (one per metric group, on the `rewards/` scorers), table (`evaluate_runs`),
outputs (the files). Pure parts need no model; the CheXbert corpus F1 is `rewards.chexbert.corpus_f1`.
"""
