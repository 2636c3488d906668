"""The one place where strings from inputs (graph, node and tensor names from a QGraph or an
ONNX file, flow names) are made safe for the text hannah-hw generates: C, C++, Verilog,
Makefiles, command lines, Markdown, file names, a terminal.

Names are reduced rather than escaped: what reaches generated code is ``[A-Za-z0-9_]`` only,
so it is inert in every one of those languages at once (inside a comment, a string, a
preprocessor line or a shell word), and nothing of a hostile name survives but letters and
digits. A reduced name carries a short hash of the original, so distinct names stay distinct.
Ground layer: imports nothing from hannah_hw.
"""

from __future__ import annotations

import hashlib
import html
import re
import unicodedata

MAX_IDENT = 48
MAX_STEM = 64
_HASH = 8
_NOT_IDENT = re.compile(r"[^A-Za-z0-9]+")
_NOT_STEM = re.compile(r"[^A-Za-z0-9_.-]+")
# words a generated identifier must not be: C/C++ and (System)Verilog keywords that a
# reduced name could plausibly equal; anything else in [A-Za-z0-9_] is an ordinary name
KEYWORDS = frozenset("""
auto break case char const continue default do double else enum extern float for goto if
inline int long register restrict return short signed sizeof static struct switch typedef
union unsigned void volatile while asm bool class delete false friend namespace new operator
private protected public template this throw true try typename using virtual always assign
begin end endcase endfunction endmodule function initial input inout integer localparam
logic module negedge output parameter posedge reg wire generate genvar
""".split())


def _digest(text: str) -> str:
    # surrogatepass: JSON may carry lone surrogates ("\\ud800"), which plain UTF-8 refuses
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:_HASH]


def safe_ident(text: str, max_len: int = MAX_IDENT) -> str:
    """``text`` as an identifier valid and inert in C, C++, Verilog, Make and sh: letters,
    digits and single underscores, starting with a letter, at most ``max_len`` characters.
    An ordinary name is returned unchanged; any other gets ``_<hash>`` of the original."""
    if max_len < _HASH + 3:
        raise ValueError(f"max_len must be at least {_HASH + 3}")
    text = str(text)
    core = "_".join(w for w in _NOT_IDENT.split(text.replace("_", " ")) if w)
    if core == text and core[:1].isalpha() and len(core) <= max_len and core not in KEYWORDS:
        return core
    if not core[:1].isalpha():
        core = "n_" + core if core else "n"
    return f"{core[:max_len - _HASH - 1].rstrip('_')}_{_digest(text)}"


def c_string(text: str) -> str:
    """A C string literal of ``text``: every byte outside a conservative printable set as an
    octal escape, so no quote, backslash, newline or trigraph (``??/``) reaches the source."""
    out = []
    for ch in str(text):
        if ch.isascii() and (ch.isalnum() or ch in " _.,:;+-=/()[]"):
            out.append(ch)
        else:
            out += [f"\\{b:03o}" for b in ch.encode("utf-8", "surrogatepass")]
    return '"' + "".join(out) + '"'


def file_stem(text: str, max_len: int = MAX_STEM) -> str:
    """``text`` as one file-name component: ``[A-Za-z0-9_.-]``, no ``/``, ``..`` or NUL, no
    leading dot or dash (hidden files, options to tools), never empty, at most ``max_len``."""
    text = str(text)
    stem = _NOT_STEM.sub("_", text).replace("..", "_")
    if stem == text and stem[:1].isalnum() and len(stem) <= max_len:
        return stem
    stem = stem.lstrip(".-_")[:max_len - _HASH - 1].rstrip(".-_")
    return f"{stem}_{_digest(text)}" if stem else f"n_{_digest(text)}"


def printable(text: str, max_len: int = 80) -> str:
    """``text`` for a terminal or a log line: control, format (bidirectional overrides) and
    separator characters escaped, bounded; a name cannot move the cursor or fake a line."""
    out = []
    for ch in str(text):
        cat = unicodedata.category(ch)
        out.append(ch if ch == " " or cat[0] not in "CZ" else f"\\u{ord(ch):04x}")
    s = "".join(out)
    return s if len(s) <= max_len else s[:max_len - 3] + "..."


_MD_SPECIAL = re.compile(r"([\\`*\[\]|])")


def md_text(text: str) -> str:
    """``text`` for a Markdown table cell or heading: one line, no raw HTML, no link, code or
    table syntax (``| [ ] ` * \\`` backslash-escaped; ``< > &`` as entities)."""
    s = printable(" ".join(str(text).split()), max_len=1000)
    return _MD_SPECIAL.sub(r"\\\1", html.escape(s, quote=False))


__all__ = ["safe_ident", "c_string", "file_stem", "printable", "md_text", "KEYWORDS",
           "MAX_IDENT", "MAX_STEM"]
