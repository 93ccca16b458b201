"""A griffe extension for the API reference: numnet's docstrings use reStructuredText roles
(:class:`Sequential`, :func:`numnet.training.fit`), which Markdown would show as written;
this turns each into a code span. (``double`` backticks are already Markdown code.)"""

from __future__ import annotations

import re
from typing import Any

from griffe import Extension, Object

ROLE = re.compile(r":(?:class|func|meth|mod|attr|data|exc|obj|term):`~?([^`]+)`")


class RstRoles(Extension):
    """Rewrite ``:role:`target``` as ```target``` in every docstring."""

    def on_object(self, *, obj: Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = ROLE.sub(r"`\1`", obj.docstring.value)
