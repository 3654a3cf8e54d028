"""Model strings are hostile: the three forms in which they may appear (tvm_patch/names.py)."""

from __future__ import annotations

import re

import pytest

from tvm_patch_core.names import c_comment, is_identifier, sanitize, shown

PAYLOADS = [
    "serving_default_input:0",
    "a-b",
    "my input",
    "a\n#include </etc/hostname>\n",
    'x[1];}\n__attribute__((constructor)) static void p(void){system("id");}\nstatic int y',
    "*/ int evil; /*",
    "??/\nline",
    "\x1b[31mred\x1b[0m",
    "",
    "123",
    "é\u202eevil",
]


@pytest.mark.parametrize("text", PAYLOADS)
def test_sanitize_gives_an_identifier(text):
    name = sanitize(text, "v")
    assert is_identifier(name), name
    assert re.fullmatch(r"[A-Za-z0-9_]+", name)


def test_sanitize_keeps_readable_names():
    assert sanitize("serving_default_input:0") == "serving_default_input_0"
    assert sanitize("lv12") == "lv12"
    assert sanitize("0abc", "v") == "v_0abc"


@pytest.mark.parametrize("text", PAYLOADS)
def test_c_comment_cannot_end_the_comment_or_start_a_line(text):
    body = c_comment(text)
    assert "*/" not in body and "/*" not in body and "\n" not in body and "\\" not in body
    assert "#" not in body and "??" not in body


@pytest.mark.parametrize("text", PAYLOADS)
def test_shown_is_one_printable_line(text):
    out = shown(text)
    assert "\n" not in out and "\x1b" not in out and "\u202e" not in out
    assert len(out) <= 80


def test_shown_truncates_long_names():
    assert shown("x" * 500).endswith("...'")
