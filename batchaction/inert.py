"""Text from a pull request, made inert for a comment or job summary posted as the bot.

A TODO.md title, an executor's summary or its log can hold ``@user`` and ``@org/team``
(GitHub notifies them), ``owner/repo#5`` and ``#5`` (cross-references on other issues),
``[text](url)`` and ``![](url)`` (links and remote images) and HTML. In the bot's name they
must do nothing: HTML is escaped, a zero-width space (``&#8203;``) follows ``@`` and ``#``
where GitHub would read a mention or a reference, brackets become entities, and ANSI escape
sequences (colours, cursor moves) are removed. Log excerpts go in ``<pre>``, where Markdown
makes no link; mentions and references are neutralised there too rather than trusting that
GitHub never reads them inside ``<pre>``.
"""

from __future__ import annotations

import html
import re

# CSI (colours, cursor moves), OSC (titles, hyperlinks; ended by BEL or ST) and the
# two-character escapes (ECMA-48).
ANSI = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)?|[@-Z\\-_])")
_MENTION = re.compile(r"@(?=[A-Za-z0-9])")
_REFERENCE = re.compile(r"#(?=\d)")
_BRACKETS = str.maketrans({"[": "&#91;", "]": "&#93;"})


def strip_ansi(text: str) -> str:
    """``text`` without ANSI escape sequences (a stray ESC is dropped too)."""
    return ANSI.sub("", text).replace("\x1b", "")


def inert(text: str) -> str:
    """``text`` HTML-escaped, without ANSI sequences, with mentions, references, links and
    images neutralised (see the module docstring); it reads the same on GitHub."""
    text = html.escape(strip_ansi(text), quote=False)
    # References first: the entity a mention gets holds a "#" and digits itself.
    text = _REFERENCE.sub("#&#8203;", text)
    text = _MENTION.sub("@&#8203;", text)
    return text.translate(_BRACKETS)
