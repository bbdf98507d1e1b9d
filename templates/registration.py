"""The `qwen2_5_vl_cxr` swift template: Qwen2.5-VL chat format without a system prompt.

The role line ("You are a radiology assistant ...") is part of the user prompt (docs/algorithm.md §8,
`templates.prompt`), so the template adds no default system message on top of it. Everything
else (image placeholders, vision token expansion, stop words) is swift's own Qwen2.5-VL template;
only the media token ids are read from the tokenizer (`templates.qwen_cxr`). swift is imported
only inside `register_templates()`.
"""
from __future__ import annotations

CXR_TEMPLATE = "qwen2_5_vl_cxr"


def register_templates() -> list[str]:
    """Registers the CXR template(s) in swift's TEMPLATE_MAPPING (idempotent); returns their names."""
    from swift.template import register_template
    from swift.template.templates.qwen import QwenTemplateMeta

    from templates.qwen_cxr import CXRQwen2_5VLTemplate

    register_template(QwenTemplateMeta(CXR_TEMPLATE, template_cls=CXRQwen2_5VLTemplate, default_system=None),
                      exist_ok=True)
    return [CXR_TEMPLATE]
