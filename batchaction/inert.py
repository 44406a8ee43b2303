"""Text from a pull request, made inert for a comment or job summary posted as the bot.

A TODO.md title, an executor's summary or its log can hold ``@user`` and ``@org/team``
(GitHub notifies them), ``owner/repo#5`` and ``#5`` (cross-references on other issues),
``[text](url)`` and ``![](url)`` (links and remote images), bare URLs, ``www.`` names and
``GH-5`` (autolinked), bidirectional controls and HTML. In the bot's name they
must do nothing: HTML is escaped, a zero-width space (``&#8203;``) follows ``@`` and ``#``
where GitHub would read a mention or a reference, brackets become entities, and ANSI escape
sequences (colours, cursor moves) are removed. Log excerpts go in ``<pre>``, where Markdown
makes no link; mentions and references are neutralised there too rather than trusting that
GitHub never reads them inside ``<pre>``.
"""

from __future__ import annotations

import base64
import html
import re
from typing import Any

# CSI (colours, cursor moves), OSC (titles, hyperlinks; ended by BEL or ST) and the
# two-character escapes (ECMA-48).
ANSI = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)?|[@-Z\\-_])")
_MENTION = re.compile(r"@(?=[A-Za-z0-9])")
_REFERENCE = re.compile(r"#(?=\d)")
# What GitHub autolinks without brackets: URLs (an issue URL also cross-references), www.
# names (also right after "_", a word character: GFM links "_www.x"), GH-12 references.
_AUTOLINK = re.compile(
    r"(?<=:)(?=//)|(?<=(?<![A-Za-z0-9])www)(?=\.)|(?<=\bGH)(?=-\d)", re.IGNORECASE
)
# Bidirectional controls reorder what a reader sees (U+202A-U+202E, U+2066-U+2069).
_BIDI = dict.fromkeys([*range(0x202A, 0x202F), *range(0x2066, 0x206A)])
_BRACKETS = str.maketrans({"[": "&#91;", "]": "&#93;"})


def strip_ansi(text: str) -> str:
    """``text`` without ANSI escape sequences (a stray ESC is dropped too)."""
    return ANSI.sub("", text).replace("\x1b", "")


def inert(text: str) -> str:
    """``text`` HTML-escaped, without ANSI sequences, with mentions, references, links and
    images neutralised (see the module docstring); it reads the same on GitHub."""
    text = html.escape(strip_ansi(text).translate(_BIDI), quote=False)
    # References first: the entity every later step inserts holds a "#" and digits itself.
    text = _REFERENCE.sub("#&#8203;", text)
    text = _MENTION.sub("@&#8203;", text)
    text = _AUTOLINK.sub("&#8203;", text)
    return text.translate(_BRACKETS)


def secret_forms(token: str) -> list[str]:
    """The forms a GitHub token travels in: itself, and base64 of it and of
    ``x-access-token:<token>`` (git's basic-auth header)."""
    if not token:
        return []
    return [
        token,
        base64.b64encode(token.encode()).decode(),
        base64.b64encode(f"x-access-token:{token}".encode()).decode(),
    ]


def redact(value: Any, secrets: list[str]) -> Any:
    """``value`` (JSON-like: dicts, lists, text) with every secret in its text replaced by
    ``***``: what a task printed or reported goes into a PR comment, which ``::add-mask::``
    does not cover."""
    if isinstance(value, str):
        for secret in secrets:
            value = value.replace(secret, "***")
        return value
    if isinstance(value, dict):
        return {key: redact(item, secrets) for key, item in value.items()}
    if isinstance(value, list):
        return [redact(item, secrets) for item in value]
    return value
