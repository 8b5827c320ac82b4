"""Expected/got excerpts as numpy prints them, with the entries that are off marked (<mark>)
from the grader's typed `off_indices` and `worst_index` (never parsed from the message)."""

from __future__ import annotations

import math
import re
from urllib.parse import urlencode

import numpy as np
from markupsafe import Markup, escape

_SPECIAL = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
# One printed entry of np.array2string's output (they come in C order).
_ENTRY = re.compile(r"-?(?:nan|inf|\d+\.?\d*(?:e[-+]?\d+)?)")


def _floats(values):
    if isinstance(values, list):
        return [_floats(v) for v in values]
    return _SPECIAL.get(values, values) if isinstance(values, str) else float(values)


def array_html(values, off_indices: list[list[int]] | None = None,
               worst_index: list[int] | None = None) -> Markup:
    """VALUES (a float or nested lists, as in the result JSON) printed like the grader's text
    (precision 4), the entries at OFF_INDICES in <mark class="off">, WORST_INDEX also "worst"."""
    array = np.asarray(_floats(values), dtype=np.float64)
    with np.printoptions(precision=4, suppress=True, linewidth=100, threshold=array.size + 1):
        text = np.array2string(array)
    off = {tuple(i) for i in off_indices or []}
    worst = tuple(worst_index) if worst_index is not None else None
    out, last = [], 0
    for k, match in enumerate(_ENTRY.finditer(text)):
        index = tuple(int(i) for i in np.unravel_index(k, array.shape)) if array.shape else ()
        out.append(str(escape(text[last:match.start()])))
        entry = str(escape(match.group()))
        if index in off:
            cls, label = ("off worst", "the largest difference") if index == worst else ("off", "differs")
            entry = f'<mark class="{cls}" title="{label} at {list(index)}">{entry}</mark>'
        out.append(entry)
        last = match.end()
    out.append(str(escape(text[last:])))
    return Markup("".join(out))   # every piece of text went through escape()


def source_link(submission_id: int, location) -> str:
    """The source page at LOCATION ({"path", "line"}): that file, its line marked and scrolled to."""
    path, line = location["path"], location.get("line")
    query = urlencode({"path": path} | ({"line": line} if line else {}))
    return f"/submissions/{submission_id}/source?{query}" + (f"#L-{line}" if line else "")
