# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""Issue #12 "Checked by": each bug report R1-R16 is written on the public API in at
most 40 lines.  A report's lines are its ``test_Rn_*`` function in test_reports.py plus
every module-level helper function it uses (directly or through another helper), so a
shared helper cannot hide a report's logic; blank lines, comment-only lines and
docstrings are not counted."""

import ast
import io
import re
import tokenize
from pathlib import Path

import pytest

REPORTS = Path(__file__).with_name("test_reports.py")
LIMIT = 40


def code_lines(source: str, node: ast.FunctionDef) -> set[int]:
    """Line numbers of ``node`` that hold code (not blank, comment-only or docstring)."""
    lines = set()
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type in (tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT,
                        tokenize.DEDENT, tokenize.ENDMARKER):
            continue
        if node.lineno <= tok.start[0] <= node.end_lineno:
            lines.update(range(tok.start[0], tok.end[0] + 1))
    doc = node.body[0]
    if isinstance(doc, ast.Expr) and isinstance(doc.value, ast.Constant) and isinstance(doc.value.value, str):
        lines -= set(range(doc.lineno, doc.end_lineno + 1))
    return lines


def report_lines(source: str) -> dict[str, int]:
    """Report name ("R1"...) -> the code lines of its test and the helpers it uses."""
    tree = ast.parse(source)
    funcs = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}

    def used(node: ast.FunctionDef, seen: set[str]) -> set[str]:
        for n in ast.walk(node):
            if isinstance(n, ast.Name) and n.id in funcs and n.id not in seen:
                seen.add(n.id)
                used(funcs[n.id], seen)
        return seen

    out: dict[str, int] = {}
    for name, node in funcs.items():
        m = re.fullmatch(r"test_(R\d+)_\w+", name)
        if m:
            lines = code_lines(source, node)
            for helper in used(node, {name}) - {name}:
                lines |= code_lines(source, funcs[helper])
            out[m.group(1)] = out.get(m.group(1), 0) + len(lines)
    return out


def test_every_report_has_a_test():
    assert sorted(report_lines(REPORTS.read_text()), key=lambda r: int(r[1:])) == [
        f"R{i}" for i in range(1, 17)]


@pytest.mark.parametrize("report", [f"R{i}" for i in range(1, 17)])
def test_report_is_at_most_40_lines(report):
    n = report_lines(REPORTS.read_text()).get(report)
    assert n is not None and n <= LIMIT, f"{report}: {n} lines"


def test_the_count_sees_helpers_and_skips_docstrings_and_comments():
    src = '''
def helper():
    """doc"""
    a = 1  # comment

    return a


def test_R99_x():
    # only a comment
    return helper()
'''
    assert report_lines(src) == {"R99": 2 + 3}   # the test's def and return; the helper's 3
