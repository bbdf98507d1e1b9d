"""The CXR swift templates, one per model family (`templates.families`): the family's own swift
template without a default system prompt.

The role line ("You are a radiology assistant ...") is part of the user prompt (docs/algorithm.md §8,
`templates.prompt`), so the template adds no default system message on top of it. Everything
else (chat format, thinking prefix, image placeholders, vision token expansion, stop words) is a
copy of swift's registered template of the family; the class adds the family check and reads
the media token ids from the tokenizer (`templates.qwen_cxr`). swift is imported only inside
`register_templates()`.
"""
from __future__ import annotations

from templates.families import DEFAULT_FAMILY, FAMILIES

CXR_TEMPLATE = FAMILIES[DEFAULT_FAMILY].cxr_template  # the paper's policy: "qwen2_5_vl_cxr"
CXR_TEMPLATES: tuple[str, ...] = tuple(f.cxr_template for f in FAMILIES.values())


def register_templates() -> list[str]:
    """Registers every family's CXR template in swift's TEMPLATE_MAPPING (idempotent); returns their names."""
    import copy
    import dataclasses

    from swift.template import TEMPLATE_MAPPING, register_template

    from templates.qwen_cxr import TEMPLATE_CLASSES

    for family in FAMILIES.values():
        base = copy.deepcopy(TEMPLATE_MAPPING[family.base_template])
        meta = dataclasses.replace(base, template_type=family.cxr_template, template_cls=TEMPLATE_CLASSES[family.name],
                                   default_system=None)
        register_template(meta, exist_ok=True)
    return list(CXR_TEMPLATES)
