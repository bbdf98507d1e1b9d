"""CXR prompt building (`templates.prompt`), the model families (`templates.families`) and the
registered swift templates (`templates.registration`).

Importing this package does not import swift; call `register_templates()` for that.
"""
from templates.families import FAMILIES, FamilyError, ModelFamily, get_family
from templates.registration import CXR_TEMPLATE, CXR_TEMPLATES, register_templates

__all__ = ["CXR_TEMPLATE", "CXR_TEMPLATES", "FAMILIES", "FamilyError", "ModelFamily", "get_family",
           "register_templates"]
