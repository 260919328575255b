"""The README's metrics table lists exactly the metrics the code registers."""

from __future__ import annotations

import re
from pathlib import Path

from service.metrics import names

README = Path(__file__).parents[2] / "README.md"


def test_the_readme_lists_exactly_the_registered_metric_names() -> None:
    section = README.read_text().split("## Metrics and health", 1)[1].split("\n## ", 1)[0]
    listed = re.findall(r"^\| `(bingx_recorder_[a-z_]+)` \|", section, flags=re.MULTILINE)
    assert sorted(listed) == names()
    assert len(listed) == len(set(listed))
