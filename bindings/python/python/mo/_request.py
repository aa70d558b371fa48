"""The one raw request under the generated calls of :mod:`mo._api` (both clients)."""

from __future__ import annotations

import json
from typing import Any, Optional


class RawCalls:
    """``_call``: a generated call's request, with unset (``None``) query values and body
    fields left out, on the native ``_request``."""

    _request: Any

    def _call(
        self,
        method: str,
        segments: list[str],
        query: list[tuple[str, Any]],
        body: Optional[dict[str, Any]],
        device: Optional[str],
    ) -> Any:
        pairs = [(k, _text(v)) for k, v in query if v is not None]
        text = None if body is None else json.dumps({k: v for k, v in body.items() if v is not None})
        return self._request((method, segments, pairs, text, device))


def _text(value: Any) -> str:
    """A query value as the API reads it (``true``/``false`` for booleans)."""
    return ("true" if value else "false") if isinstance(value, bool) else str(value)
