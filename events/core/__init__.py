"""The pure core: lifecycle fold and reactions, resource rules, fair share, matching, explanations.

Nothing in this package performs I/O, reads a clock or draws random numbers: time and ids come in
as arguments. tests/unit/core/test_purity.py proves the imports.
"""
