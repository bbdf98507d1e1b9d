"""EditGRPO for ms-swift.

Importing this package is cheap and touches no swift/transformers code: the pure algorithm
modules (sentences, entities, matching, edits, selection, advantage) are used by rewards and
evaluation too. `register()` wires everything into swift; `plugin.py` calls it.
"""
__version__ = "0.1.0"
