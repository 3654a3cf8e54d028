"""Model strings are hostile: the three ways they may appear, and nothing else.

- `sanitize`: a strict identifier (`[A-Za-z0-9_]`, never empty, never a leading digit) for a
  name a person may want to recognise (a Relax variable, a kernel). Callers make it unique
  after sanitizing. C identifiers of tensors never come from here: the emitter derives them
  from indices.
- `shown`: a model string inside an error message, escaped (no newline, no terminal control
  sequence) and shortened.
- `c_comment`: a model string inside a C comment, reduced to characters that cannot end the
  comment, start a preprocessor line or form a trigraph.
"""

from __future__ import annotations

import re

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SAFE_COMMENT = re.compile(r"[A-Za-z0-9_.:,;=+\-\[\] ]")
MAX_NAME = 48


def is_identifier(text: str) -> bool:
    return bool(_IDENT.fullmatch(text))


def sanitize(text: str, prefix: str = "n") -> str:
    """`text` as an identifier: other characters become `_`, a leading digit gets `prefix`."""
    name = re.sub(r"_+", "_", re.sub(r"[^A-Za-z0-9_]", "_", text)).strip("_")[:MAX_NAME]
    if not name or not name[0].isalpha():
        name = f"{prefix}_{name}" if name else prefix
    return name


def shown(text: str, quote: bool = True, limit: int = 80) -> str:
    """`text` for a one-line message: escaped like a Python literal, at most `limit` chars."""
    out = repr(str(text))
    if len(out) > limit:
        out = out[: limit - 4] + "...'"
    return out if quote else out[1:-1]


def c_comment(text: str, limit: int = 80) -> str:
    """`text` for the inside of a /* */ comment: every other character becomes `?`."""
    return "".join(c if _SAFE_COMMENT.fullmatch(c) else "?" for c in str(text)[:limit]).replace("??", "?_")
