# cython: language_level=3, boundscheck=False, wraparound=False
"""COPY text of rows as UTF-8 bytes, in C: the same bytes as copytext.rows_formatter's text, encoded.

Built (optionally) by setup.py; projections/readmodel/copytext.py uses it when it was built from this
very file (SOURCE_DIGEST, checked by tests/unit/projections/test_copytext_cython.py) and otherwise
formats in Python. Cells: None -> \\N; str escaped (backslash, tab, newline, carriage return); bool
t/f; int decimal; float repr; list/tuple of ints {1,2}; JSON columns through `json_text`, which
returns text already escaped for COPY.
"""

from cpython.bytes cimport PyBytes_FromStringAndSize
from cpython.dict cimport PyDict_GetItem
from cpython.mem cimport PyMem_Free, PyMem_Malloc, PyMem_Realloc
from cpython.object cimport PyObject
from cpython.unicode cimport PyUnicode_AsUTF8AndSize
from libc.stdio cimport snprintf
from libc.string cimport memcpy


cdef struct _Buffer:
    char* data
    Py_ssize_t size
    Py_ssize_t capacity


cdef int _grow(_Buffer* w, Py_ssize_t more) except -1:
    cdef Py_ssize_t capacity = w.capacity * 2
    if capacity < w.size + more:
        capacity = w.size + more + 4096
    cdef char* data = <char*>PyMem_Realloc(w.data, capacity)
    if data == NULL:
        raise MemoryError()
    w.data = data
    w.capacity = capacity
    return 0


cdef inline int _put(_Buffer* w, const char* source, Py_ssize_t n) except -1:
    if w.size + n > w.capacity:
        _grow(w, n)
    memcpy(w.data + w.size, source, n)
    w.size += n
    return 0


cdef inline int _put_byte(_Buffer* w, char c) except -1:
    if w.size + 1 > w.capacity:
        _grow(w, 1)
    w.data[w.size] = c
    w.size += 1
    return 0


cdef inline int _put_text(_Buffer* w, object text) except -1:
    cdef Py_ssize_t n
    cdef const char* s = PyUnicode_AsUTF8AndSize(text, &n)
    return _put(w, s, n)


cdef int _put_escaped(_Buffer* w, object text) except -1:
    """The text with \\ \\t \\n \\r escaped (in UTF-8 these bytes occur only as those characters)."""
    cdef Py_ssize_t n, i, start = 0
    cdef const char* s = PyUnicode_AsUTF8AndSize(text, &n)
    cdef char c
    for i in range(n):
        c = s[i]
        if c == c'\\' or c == c'\t' or c == c'\n' or c == c'\r':
            _put(w, s + start, i - start)
            _put_byte(w, c'\\')
            if c == c'\\':
                _put_byte(w, c'\\')
            elif c == c'\t':
                _put_byte(w, c't')
            elif c == c'\n':
                _put_byte(w, c'n')
            else:
                _put_byte(w, c'r')
            start = i + 1
    return _put(w, s + start, n - start)


cdef int _put_int(_Buffer* w, object v) except -1:
    cdef long long x
    cdef char digits[32]
    cdef int n
    try:
        x = v
    except OverflowError:
        return _put_text(w, str(v))
    n = snprintf(digits, 32, "%lld", x)
    return _put(w, digits, n)


cdef int _put_cell(_Buffer* w, object v, bint is_json, object json_text, object int_array) except -1:
    cdef type kind = type(v)
    if v is None:
        return _put(w, b"\\N", 2)
    if is_json:
        return _put_text(w, json_text(v))
    if kind is str:
        return _put_escaped(w, v)
    if kind is bool:
        return _put_byte(w, c't' if v else c'f')
    if kind is int:
        return _put_int(w, v)
    if kind is float:
        return _put_text(w, repr(v))
    if kind is list or kind is tuple:
        return _put_text(w, int_array(v))
    if kind is dict:
        return 0  # copytext's placeholder: only JSON columns hold dicts
    raise TypeError(f"no COPY text form for values of type {kind}")


def format_rows(rows, tuple columns, tuple json_columns, bint attributes, json_text, int_array):
    """The COPY text of `rows` (dicts, or objects with `attributes`) as UTF-8 bytes; json_columns[i]
    says whether columns[i] is JSON."""
    cdef _Buffer w
    cdef Py_ssize_t n_columns = len(columns), i
    cdef PyObject* found
    w.capacity = 65536
    w.size = 0
    w.data = <char*>PyMem_Malloc(w.capacity)
    if w.data == NULL:
        raise MemoryError()
    try:
        for row in rows:
            for i in range(n_columns):
                column = columns[i]
                if attributes:
                    value = getattr(row, column)
                else:
                    found = PyDict_GetItem(row, column) if type(row) is dict else NULL
                    value = <object>found if found != NULL else row[column]
                if i:
                    _put_byte(&w, c'\t')
                _put_cell(&w, value, json_columns[i], json_text, int_array)
            _put_byte(&w, c'\n')
        return PyBytes_FromStringAndSize(w.data, w.size)
    finally:
        PyMem_Free(w.data)


SOURCE_DIGEST = '32cd2ccbff90a4fd'
