"""bench/RESULTS.md holds one section per benchmark family; each family's report rewrites only its own.

A section is the text between the lines `<!-- begin NAME -->` and `<!-- end NAME -->`; a family seen for the first
time is appended. Sections keep the order in which they first appeared.
"""

from __future__ import annotations

import re
from pathlib import Path

RESULTS = Path(__file__).with_name("RESULTS.md")
_TITLE = (
    "# fastsim benchmark results\n\n"
    "Each section is written by the report command it names; ratios are peer time over fastsim time.\n"
)


def write_section(name: str, markdown: str, path: Path = RESULTS) -> None:
    """Replace (or append) the section `name` of the results file `path` with `markdown`."""
    if not re.fullmatch(r"[a-z0-9_-]+", name):
        raise ValueError(f"section names are lower-case words; got {name!r}")
    block = f"<!-- begin {name} -->\n{markdown.strip()}\n<!-- end {name} -->"
    text = path.read_text() if path.exists() else _TITLE
    pattern = re.compile(rf"<!-- begin {name} -->\n.*?<!-- end {name} -->", re.DOTALL)
    text = pattern.sub(lambda _: block, text) if pattern.search(text) else text.rstrip() + "\n\n" + block + "\n"
    path.write_text(text)
