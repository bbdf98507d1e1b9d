"""swift's Qwen2.5-VL template with the media token ids read from the checkpoint's tokenizer.

swift's class hard-codes Qwen's ids (151655/151656). Every real Qwen2.5-VL has them, but a
checkpoint with another vocabulary (the project's tiny test model) does not. This module imports
swift at its top; `templates.registration` imports it only when registering. The class lives at
module level so that swift can pickle the template for its data workers.
"""
from __future__ import annotations

from swift.template.templates.qwen import Qwen2_5VLTemplate

MEDIA_PAD_TOKENS = {"image_token_id": "<|image_pad|>", "video_token_id": "<|video_pad|>"}


class CXRQwen2_5VLTemplate(Qwen2_5VLTemplate):
    def init_processor(self, processor) -> None:
        super().init_processor(processor)
        if processor is not None:
            for attribute, token in MEDIA_PAD_TOKENS.items():
                setattr(self, attribute, self.tokenizer.convert_tokens_to_ids(token))
