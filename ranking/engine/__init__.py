"""The ranking hot path: plain Python and numpy over immutable dataclasses, no Django models.

One request is one pass: features -> score -> rules -> order -> explanation (on request).
"""
