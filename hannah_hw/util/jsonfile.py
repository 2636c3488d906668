"""Reading the small JSON records hannah-hw writes beside its artefacts (a HWDIR's summary, an
FWDIR's build record and HWDIR link, an energy table): a file that cannot be read, is not
UTF-8 JSON, is not an object or holds a field of the wrong type becomes one error naming the
file and the field, of the caller's exception type (a one-line user error in the CLI).
Ground layer: imports nothing from hannah_hw but util."""

from __future__ import annotations

import json
from pathlib import Path
from typing import NoReturn

from .names import printable

_REQUIRED = object()
_KINDS = {bool: "a boolean", int: "an integer", float: "a number", str: "a string",
          list: "a list", dict: "an object", type(None): "null"}


def show(v) -> str:
    """A JSON value for an error message: short, one line, no control characters."""
    if isinstance(v, int) and not isinstance(v, bool) and abs(v) >= 10 ** 18:
        return f"an integer of about {int(v.bit_length() * 0.30103) + 1} digits"
    if isinstance(v, (dict, list)):
        return f"{_KINDS[type(v)]} of {len(v)}"
    return printable(repr(v), 40)


class Record:
    """A JSON object read from ``path``; ``get`` checks a field's type, ``obj`` a nested
    object's, each failure an ``error`` naming the file and the field's path."""

    def __init__(self, data: dict, path, error: type[Exception] = ValueError,
                 prefix: str = ""):
        self.data, self.path, self.error, self.prefix = data, path, error, prefix

    def fail(self, msg: str) -> NoReturn:
        raise self.error(f"{self.path}: {msg}")

    def __contains__(self, key: str) -> bool:
        return key in self.data

    def get(self, key: str, kind: type | tuple[type, ...], default=_REQUIRED):
        """``data[key]`` if it is of ``kind`` (an int is a float; a bool is neither), else
        ``default`` when the key is absent and a default was given."""
        name = self.prefix + key
        if key not in self.data:
            if default is _REQUIRED:
                self.fail(f"lacks {name}")
            return default
        v, kinds = self.data[key], kind if isinstance(kind, tuple) else (kind,)
        ok = (*kinds, int) if float in kinds else kinds
        if not isinstance(v, ok) or (isinstance(v, bool) and bool not in kinds):
            want = " or ".join(_KINDS.get(k, k.__name__) for k in kinds)
            self.fail(f"{name} is {show(v)}; must be {want}")
        return v

    def choice(self, key: str, choices: tuple, default=_REQUIRED):
        """``data[key]`` if it is one of ``choices`` (strings, or None for null)."""
        v = self.get(key, (str, type(None)) if None in choices else str, default)
        if v is not default and v not in choices:
            self.fail(f"{self.prefix}{key} is {show(v)}; must be one of "
                      + ", ".join("null" if c is None else c for c in choices))
        return v

    def integer(self, key: str, lo: int, hi: int, default=_REQUIRED) -> int:
        """``data[key]`` if it is an integer in [lo, hi]."""
        v = self.get(key, int, default)
        if v is not default and not lo <= v <= hi:
            self.fail(f"{self.prefix}{key} is {show(v)}; must be in {lo}..{hi}")
        return v

    def obj(self, key: str, default=_REQUIRED) -> Record:
        """The nested object ``data[key]`` as a Record (``default``: when absent)."""
        if key not in self.data and default is not _REQUIRED:
            return default
        return Record(self.get(key, dict), self.path, self.error, f"{self.prefix}{key}.")


def read_object(path, error: type[Exception] = ValueError, what: str = "") -> Record:
    """The JSON object in ``path`` as a Record; ``what`` says what the file should be
    (\"a hardware directory's summary\") in the error when it is not."""
    p = Path(path)
    kind = f" ({what})" if what else ""
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise error(f"{path}: not a text file (not UTF-8){kind}") from None
    except OSError as e:
        raise error(f"{path}: cannot be read ({e.strerror or e}){kind}") from None
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as e:  # ValueError: bad JSON, or a too-long integer
        raise error(f"{path}: not JSON ({printable(str(e), 120)}){kind}") from None
    if not isinstance(data, dict):
        raise error(f"{path}: {show(data)} where a JSON object belongs{kind}")
    return Record(data, path, error)
