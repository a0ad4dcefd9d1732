"""Builds the optional Cython extension `events._avro_codec` (everything else is in pyproject.toml).

The extension is generated source checked in beside its generator (events/codec_cython.py); if it
cannot be built here (no C compiler), the install goes on without it and the codec keeps its
Python decoders.
"""

from Cython.Build import cythonize
from setuptools import Extension, setup

setup(ext_modules=cythonize(
    [Extension("events._avro_codec", ["events/_avro_codec.pyx"], optional=True)],
    compiler_directives={"language_level": 3}, quiet=True))
