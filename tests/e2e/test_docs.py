"""The examples of each guide run, in order, in one namespace per guide, and their assertions hold."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[2] / "docs"

#: Each guide whose examples run, with how many examples it has at least.
GUIDES = {
    "custom-fields.md": 12,
    "tasks.md": 7,
    "segments.md": 6,
    "scoring.md": 8,
    "lead-scoring.md": 3,
    "campaigns.md": 7,
    "hygiene.md": 7,
    "audit.md": 2,
}


@pytest.mark.parametrize("guide", sorted(GUIDES))
def test_every_example_of_the_guide_runs(guide: str) -> None:
    doc = DOCS / guide
    blocks = re.findall(r"```python\n(.*?)```", doc.read_text(encoding="utf-8"), flags=re.DOTALL)
    assert len(blocks) >= GUIDES[guide]
    namespace: dict[str, object] = {}
    for number, block in enumerate(blocks, 1):
        exec(compile(block, f"{doc.name} example {number}", "exec"), namespace)
