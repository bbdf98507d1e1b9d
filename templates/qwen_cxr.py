"""swift's Qwen-VL templates, one CXR class per family, with the media token ids read from the tokenizer.

swift's classes hard-code Qwen's ids (Qwen2.5-VL/Qwen3-VL 151655/151656, Qwen3.5 248056/248057).
Every real checkpoint of a family has them, but one with another vocabulary (the project's tiny
test models) does not. Each class also refuses a checkpoint of another family, which swift
would otherwise encode with the wrong vision grid and media ids. This module imports swift at
its top; `templates.registration` imports it only when registering. The classes live at module
level so that swift can pickle a template for its data workers.
"""
from __future__ import annotations

import os

from swift.template.templates.qwen import Qwen2_5VLTemplate, Qwen3_5Template, Qwen3VLTemplate

from templates.families import FamilyError, get_family, pixel_bound

MEDIA_PAD_TOKENS = {"image_token_id": "<|image_pad|>", "video_token_id": "<|video_pad|>"}


class _FamilyTemplate:
    """Mixin: the family check and the tokenizer's media ids, on top of swift's template class."""

    family: str

    def init_processor(self, processor) -> None:
        if processor is not None:
            model_type = getattr(getattr(processor, "model_info", None), "model_type", None)
            family = get_family(self.family)
            if model_type is not None and model_type != family.model_type:
                raise FamilyError(f"template {family.cxr_template} is for {family.title} (swift model_type "
                                  f"{family.model_type}) but the model is {model_type!r}; pass the template of the "
                                  "model's family (templates.families.FAMILIES)")
            check_pixel_environment(family, os.environ)
        super().init_processor(processor)
        if processor is not None:
            for attribute, token in MEDIA_PAD_TOKENS.items():
                setattr(self, attribute, self.tokenizer.convert_tokens_to_ids(token))


def check_pixel_environment(family, environ) -> None:
    """MAX_PIXELS/MIN_PIXELS, which swift turns into token counts on the family's grid, must hold an image
    (else qwen_vl_utils stops at the first image with an assertion); unset bounds are not checked."""
    if not environ.get("MAX_PIXELS"):
        return
    family.check_pixels(pixel_bound("MAX_PIXELS", environ["MAX_PIXELS"]),
                        pixel_bound("MIN_PIXELS", environ.get("MIN_PIXELS")))


class CXRQwen2_5VLTemplate(_FamilyTemplate, Qwen2_5VLTemplate):
    family = "qwen2_5_vl"


class CXRQwen3VLTemplate(_FamilyTemplate, Qwen3VLTemplate):
    family = "qwen3_vl"


class CXRQwen3_5Template(_FamilyTemplate, Qwen3_5Template):
    family = "qwen3_5"


TEMPLATE_CLASSES: dict[str, type] = {cls.family: cls for cls in (CXRQwen2_5VLTemplate, CXRQwen3VLTemplate,
                                                                 CXRQwen3_5Template)}
