"""nginx configuration as data: directives per block, so a test asserts where a directive stands and what
its arguments are, not that some text occurs somewhere in the file.

The grammar is nginx's own: words and quoted strings separated by whitespace, ``;`` ends a simple
directive, ``{ ... }`` holds a block, ``#`` starts a comment outside quotes. Quotes are removed from
arguments (``"ok\\n"`` is the argument ``ok\\n``), as nginx does.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

_TOKEN = re.compile(
    r"""\s+|#[^\n]*|(?P<punct>[{};])|"(?P<dq>(?:[^"\\]|\\.)*)"|'(?P<sq>(?:[^'\\]|\\.)*)'|(?P<word>[^\s{};"']+)"""
)


@dataclass(frozen=True)
class Directive:
    """One directive: its name, its arguments and, for a block directive, what the block holds."""

    name: str
    args: tuple[str, ...] = ()
    block: tuple[Directive, ...] | None = None

    def all(self, name: str, *args: str) -> list[Directive]:
        """The directives directly in this block called ``name`` whose arguments start with ``args``."""
        return [d for d in self.block or () if d.name == name and d.args[: len(args)] == args]

    def one(self, name: str, *args: str) -> Directive:
        """The only directive directly in this block called ``name`` (arguments starting with ``args``)."""
        found = self.all(name, *args)
        assert len(found) == 1, f"{len(found)} `{' '.join((name, *args))}` in `{self.name}`: {found}"
        return found[0]

    def value(self, name: str) -> tuple[str, ...]:
        """The arguments of the only ``name`` directive in this block."""
        return self.one(name).args

    def walk(self) -> Iterator[Directive]:
        """Every directive inside this block, at any depth, in file order."""
        for directive in self.block or ():
            yield directive
            yield from directive.walk()


def parse(text: str) -> Directive:
    """The whole file as the block of a nameless root directive."""
    tokens = list(_tokens(text))
    root, end = _block(tokens, 0, "")
    assert end == len(tokens), "an unmatched `}`"
    return root


def _tokens(text: str) -> Iterator[tuple[str, str]]:
    """(kind, text) pairs; kind is "punct" or "arg"."""
    position = 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        assert match is not None, f"unparsable nginx config at {text[position : position + 40]!r}"
        position = match.end()
        if match["punct"]:
            yield "punct", match["punct"]
        elif match.lastgroup in {"dq", "sq", "word"}:
            yield "arg", match[match.lastgroup]


def _block(
    tokens: list[tuple[str, str]], start: int, name: str, args: tuple[str, ...] = ()
) -> tuple[Directive, int]:
    """The directives from ``start`` to the ``}`` that closes this block (or the end for the root)."""
    directives: list[Directive] = []
    words: list[str] = []
    index = start
    while index < len(tokens):
        kind, text = tokens[index]
        index += 1
        if kind == "arg":
            words.append(text)
        elif text == ";":
            assert words, "an empty directive"
            directives.append(Directive(words[0], tuple(words[1:])))
            words = []
        elif text == "{":
            assert words, "a block without a name"
            inner, index = _block(tokens, index, words[0], tuple(words[1:]))
            directives.append(inner)
            words = []
        else:  # "}"
            assert name, "an unmatched `}`"
            assert not words, f"`{' '.join(words)}` lacks its `;`"
            return Directive(name, args, tuple(directives)), index
    assert not name, f"block `{name}` is never closed"
    assert not words, f"`{' '.join(words)}` lacks its `;`"
    return Directive(name, args, tuple(directives)), index
