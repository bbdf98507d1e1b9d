"""The policy model families: one row of plain data per ms-swift VLM family the project supports.

Everything that differs between Qwen2.5-VL, Qwen3-VL and Qwen3.5 lives here, so that a recipe, the
templates, the trainer and the tiny-model builder read one table instead of assuming Qwen2.5-VL:
swift's `--model_type` and the template the CXR one is registered on, the checkpoint's
architecture, the token that closes an assistant turn, and the vision grid. No swift or
transformers import: `run/common.sh` runs this file as a script (`python templates/families.py
shell ...`) to resolve MODEL_FAMILY, TEMPLATE and the pixel bounds before any model loads.

Pixel bounds. The paper's bounds (401,408 / 262,144 pixels, `run/images.sh`) are a visual-token
budget on Qwen2.5-VL's grid: a visual token is 2x2 merged 14-px patches, 28x28 = 784 pixels, so at
most 512 and at least 334 tokens per image. swift 4.6 turns MAX_PIXELS/MIN_PIXELS into token counts
with the family's own grid (`IMAGE_MAX_TOKEN_NUM = MAX_PIXELS // (patch * merge)**2`, swift's
`compat_qwen_vl_utils`), and Qwen3-VL/Qwen3.5 have 16-px patches (32x32 = 1,024 pixels a token): the
same pixel numbers would give them 392 and 256 tokens. `ModelFamily.same_budget` rescales a
bound so every family gets the paper's token counts (Qwen3-VL, Qwen3.5: 524,288 / 342,392 pixels).

Edited completions. All three families close an assistant turn with `<|im_end|>`; the trainer
re-tokenises an edited report as its sub-words (no special tokens) followed by `end_token`.
Qwen3.5 is a hybrid thinking model: swift's `qwen3_5` template (and so `qwen3_5_cxr`, thinking
off) ends the prompt with an empty thinking block, `response_prefix`, and prepends that text to
every decoded rollout (`Template.decode_generate_ids`) and inference response. The edits must see
the report without it (else "<think>" and "</think>" are two sentences of the report), the edited
text gets it back, and the edited ids leave it out: swift re-inserts and masks the prefix ids
itself when it encodes completion ids (`replace_assistant_response_with_ids`).
"""
from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

PAPER_GRID = 28  # Qwen2.5-VL: 14-px patches merged 2x2, the grid the paper's pixel bounds were set on
PAPER_MAX_PIXELS, PAPER_MIN_PIXELS = 401408, 262144  # docs/algorithm.md §8 (512 / 334 visual tokens)
QWEN_VL_UTILS_MIN_TOKENS = 4  # qwen_vl_utils' IMAGE_MIN_TOKEN_NUM when MIN_PIXELS is unset


class FamilyError(ValueError):
    """A family, checkpoint, template or pixel bound that does not fit the table; says what would."""


@dataclass(frozen=True)
class ModelFamily:
    """One policy family: what swift, the CXR template, the trainer and the tiny builder need to know."""

    name: str  # MODEL_FAMILY / --family
    title: str
    model_type: str  # swift's --model_type (its MODEL_MAPPING key): a local folder's architecture can be ambiguous
    architecture: str  # config.json "architectures"[0], the transformers class
    config_model_type: str  # config.json "model_type"
    base_template: str  # swift's template the CXR template copies (all but the default system prompt)
    cxr_template: str  # registered by templates.registration: no default system prompt (the user prompt has the role line)
    end_token: str  # closes an assistant turn; the trainer appends it to an edited completion
    patch_size: int  # vision patch side in pixels
    merge_size: int  # patches merged per side into one visual token
    checkpoint: str  # the recipes' default folder under EDITGRPO_MODELS_DIR (the Hugging Face repo name)
    response_prefix: str = ""  # text swift's template puts before every completion (thinking off)

    @property
    def token_side(self) -> int:
        """Pixels per side of one visual token (patch x merge)."""
        return self.patch_size * self.merge_size

    def visual_tokens(self, pixels: int) -> int:
        """Visual tokens a pixel bound allows per image, as swift 4.6 computes it (floor division)."""
        return pixels // self.token_side ** 2

    def same_budget(self, pixels: int) -> int:
        """The pixel bound giving this family the visual tokens `pixels` gives Qwen2.5-VL (the paper's grid)."""
        return pixels * self.token_side ** 2 // PAPER_GRID ** 2

    @property
    def max_pixels(self) -> int:
        return self.same_budget(PAPER_MAX_PIXELS)

    @property
    def min_pixels(self) -> int:
        return self.same_budget(PAPER_MIN_PIXELS)

    def check_pixels(self, max_pixels: int, min_pixels: int | None = None) -> tuple[int, int]:
        """(max, min) visual tokens per image, or FamilyError when the bounds do not fit this family's grid
        (qwen_vl_utils would fail on the first image, after the model has loaded)."""
        unit = f"{self.token_side}x{self.token_side} = {self.token_side ** 2} pixels a token: {self.patch_size}-px " \
               f"patches merged {self.merge_size}x{self.merge_size}"
        for variable, value in (("MAX_PIXELS", max_pixels), ("MIN_PIXELS", min_pixels)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
                raise FamilyError(f"{variable}={value!r}: expected a whole number of pixels")
        most = self.visual_tokens(max_pixels)
        if most < 1:
            raise FamilyError(f"MAX_PIXELS={max_pixels} holds no visual token of {self.title} ({unit}); "
                              f"use at least {self.token_side ** 2} (the paper's budget: {self.max_pixels})")
        least = QWEN_VL_UTILS_MIN_TOKENS if min_pixels is None else self.visual_tokens(min_pixels)
        if least > most:
            source = (f"MIN_PIXELS={min_pixels}" if min_pixels is not None
                      else f"MIN_PIXELS unset (qwen_vl_utils' minimum, {QWEN_VL_UTILS_MIN_TOKENS} tokens)")
            raise FamilyError(f"MAX_PIXELS={max_pixels} allows {most} visual tokens of {self.title} ({unit}) but "
                              f"{source} asks for {least}; raise MAX_PIXELS to at least "
                              f"{least * self.token_side ** 2} or lower MIN_PIXELS")
        return most, least


def _families(*families: ModelFamily) -> dict[str, ModelFamily]:
    return {f.name: f for f in families}


FAMILIES: dict[str, ModelFamily] = _families(
    ModelFamily("qwen2_5_vl", "Qwen2.5-VL", "qwen2_5_vl", "Qwen2_5_VLForConditionalGeneration", "qwen2_5_vl",
                "qwen2_5_vl", "qwen2_5_vl_cxr", "<|im_end|>", 14, 2, "Qwen2.5-VL-3B-Instruct"),
    ModelFamily("qwen3_vl", "Qwen3-VL", "qwen3_vl", "Qwen3VLForConditionalGeneration", "qwen3_vl",
                "qwen3_vl", "qwen3_vl_cxr", "<|im_end|>", 16, 2, "Qwen3-VL-4B-Instruct"),
    # transformers 5 has Qwen3.5 as one vision-language class (linear + full attention layers);
    # swift maps its architecture to four model types (qwen3_5, ovis_ocr2, embedding models), hence --model_type
    ModelFamily("qwen3_5", "Qwen3.5", "qwen3_5", "Qwen3_5ForConditionalGeneration", "qwen3_5",
                "qwen3_5", "qwen3_5_cxr", "<|im_end|>", 16, 2, "Qwen3.5-4B", "<think>\n\n</think>\n\n"),
)
DEFAULT_FAMILY = "qwen2_5_vl"  # the paper's policy


def strip_response_prefix(text: str) -> str:
    """A completion or inference response without the family template's response prefix (Qwen3.5's
    empty thinking block, which swift prepends to the decoded text): rewards and evaluation read the report."""
    for family in FAMILIES.values():
        if family.response_prefix and text.startswith(family.response_prefix):
            return text[len(family.response_prefix):]
    return text


def get_family(name: str) -> ModelFamily:
    try:
        return FAMILIES[name]
    except KeyError:
        raise FamilyError(f"unknown model family {name!r}; the table has {', '.join(FAMILIES)}") from None


def family_of_template(template: str) -> ModelFamily | None:
    """The family whose CXR or swift base template is `template` (None: not a family template)."""
    return next((f for f in FAMILIES.values() if template in (f.cxr_template, f.base_template)), None)


def family_of_config(config: Mapping, source: str = "config.json") -> ModelFamily:
    """The family of a checkpoint's config.json (its architecture, else its model_type)."""
    architectures = config.get("architectures") or []
    model_type = config.get("model_type")
    for family in FAMILIES.values():
        if (architectures and architectures[0] == family.architecture) or (
                not architectures and model_type == family.config_model_type):
            return family
    supported = ", ".join(f"{f.architecture} ({f.name})" for f in FAMILIES.values())
    raise FamilyError(f"{source} names architecture {architectures[0] if architectures else None!r} "
                      f"(model_type {model_type!r}), which is not a supported policy family; supported: {supported}")


def family_of_checkpoint(model_dir: str | Path) -> ModelFamily:
    path = Path(model_dir) / "config.json"
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise FamilyError(f"cannot read the model family from {path}: {error}") from None
    return family_of_config(config, str(path))


def check_template(family: ModelFamily, template: str) -> None:
    """FamilyError unless `template` is the family's CXR template or swift's template it is built on."""
    if template in (family.cxr_template, family.base_template):
        return
    owner = family_of_template(template)
    hint = f"{template!r} is {owner.title}'s" if owner else f"{template!r} is not a template of any family in the table"
    raise FamilyError(f"template {template!r} does not fit the {family.title} model ({hint}); "
                      f"use the template {family.cxr_template}")


@dataclass(frozen=True)
class Resolved:
    """What a recipe runs with: the family and the settings it derives (the paper's where not given)."""

    family: ModelFamily
    template: str
    max_pixels: int
    min_pixels: int
    base_model: str

    def shell(self) -> str:
        """`NAME=value` lines (shell-quoted) for `eval` in run/common.sh."""
        import shlex

        values = {"MODEL_FAMILY": self.family.name, "MODEL_TYPE": self.family.model_type, "TEMPLATE": self.template,
                  "MAX_PIXELS": str(self.max_pixels), "MIN_PIXELS": str(self.min_pixels),
                  "BASE_MODEL": self.base_model}
        return "".join(f"{key}={shlex.quote(value)}\n" for key, value in values.items())


def pixel_bound(variable: str, value: str | int | None) -> int | None:
    """A MAX_PIXELS/MIN_PIXELS value as given (environment text or a number); None when unset."""
    if value is None or value == "":
        return None
    if isinstance(value, int):
        return value
    try:
        return int(value.strip())
    except ValueError:
        raise FamilyError(f"{variable}={value!r}: expected a whole number of pixels") from None


def resolve(family: str | None = None, base_model: str | None = None, template: str | None = None,
            max_pixels: str | int | None = None, min_pixels: str | int | None = None,
            models_dir: str | None = None) -> Resolved:
    """MODEL_FAMILY (else the family of `base_model`'s config.json, else the paper's), checked against the
    checkpoint, TEMPLATE and the pixel bounds; defaults: the family's CXR template, the paper's token budget
    on the family's grid (MIN_PIXELS never above MAX_PIXELS), `models_dir/<family checkpoint>`."""
    chosen = get_family(family) if family else None
    if base_model and (Path(base_model) / "config.json").is_file():
        found = family_of_checkpoint(base_model)
        if chosen is not None and found != chosen:
            raise FamilyError(f"MODEL_FAMILY={chosen.name} but {base_model}/config.json is a {found.title} "
                              f"checkpoint ({found.architecture}); set MODEL_FAMILY={found.name} or another BASE_MODEL")
        chosen = found
    chosen = chosen or get_family(DEFAULT_FAMILY)
    template = template or chosen.cxr_template
    check_template(chosen, template)
    most = pixel_bound("MAX_PIXELS", max_pixels)
    least = pixel_bound("MIN_PIXELS", min_pixels)
    most = chosen.max_pixels if most is None else most
    least = min(chosen.min_pixels, most) if least is None else least
    chosen.check_pixels(most, least)
    base_model = base_model or str(Path(models_dir or "~/.cache/editgrpo/models").expanduser() / chosen.checkpoint)
    return Resolved(chosen, template, most, least, base_model)


def main(argv: Sequence[str] | None = None) -> int:
    """`families.py shell [--family F] [--base-model DIR] [--template T] [--max-pixels N] [--min-pixels N]
    [--models-dir DIR]`: the resolved settings as shell assignments; exit 2 with the reason otherwise."""
    import argparse

    parser = argparse.ArgumentParser(prog="templates/families.py")
    sub = parser.add_subparsers(dest="command", required=True)
    shell = sub.add_parser("shell", help="resolve a recipe's model family and settings")
    for flag in ("family", "base-model", "template", "max-pixels", "min-pixels", "models-dir"):
        shell.add_argument(f"--{flag}", default=None)
    sub.add_parser("list", help="the families, one per line")
    args = parser.parse_args(argv)
    if args.command == "list":
        for f in FAMILIES.values():
            print(f"{f.name}\t{f.title}\t{f.cxr_template}\t{f.patch_size}px\t{f.checkpoint}")
        return 0
    try:
        resolved = resolve(args.family, args.base_model, args.template, args.max_pixels, args.min_pixels,
                           args.models_dir)
    except FamilyError as error:
        print(f"{parser.prog}: {error}", file=sys.stderr)  # run/common.sh and run/infer.sh call it
        return 2
    sys.stdout.write(resolved.shell())
    return 0


if __name__ == "__main__":
    sys.exit(main())
