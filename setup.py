"""Builds the optional Cython extensions (everything else is in pyproject.toml):
- `events._avro_codec`: the codec's encoders/decoders, generated source checked in beside its
  generator (events/codec_cython.py);
- `projections.readmodel._copytext`: COPY text formatting for the read-model sink.
If they cannot be built here (no C compiler), the install goes on without them and the code that
uses them keeps its Python implementation.
"""

from Cython.Build import cythonize
from setuptools import Extension, setup

setup(ext_modules=cythonize(
    [Extension("events._avro_codec", ["events/_avro_codec.pyx"], optional=True),
     Extension("projections.readmodel._copytext", ["projections/readmodel/_copytext.pyx"], optional=True)],
    compiler_directives={"language_level": 3}, quiet=True))
