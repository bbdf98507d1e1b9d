"""CXR prompt building (`templates.prompt`) and the registered swift template (`templates.registration`).

Importing this package does not import swift; call `register_templates()` for that.
"""
from templates.registration import CXR_TEMPLATE, register_templates

__all__ = ["CXR_TEMPLATE", "register_templates"]
