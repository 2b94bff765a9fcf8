from __future__ import annotations

import pytest

from riskwatch.ingest.topics import TopicTemplate


@pytest.mark.parametrize(
    ("template", "topic", "expected"),
    [
        (
            "rw/{enterprise}/{site}/{gateway}",
            "rw/a/b/c",
            {"enterprise": "a", "site": "b", "gateway": "c"},
        ),
        ("rw/{enterprise}/{site}/{gateway}", "rw/a/b/c/d", None),
        ("rw/{enterprise}/{site}/{gateway}", "rw/a//c", None),
        (
            "plant/+/{enterprise}/{site}/#",
            "plant/x/e/s/any/thing",
            {"enterprise": "e", "site": "s"},
        ),
        ("plant/+/{enterprise}/{site}/#", "plant/x/e", None),
    ],
)
def test_match(template: str, topic: str, expected: dict | None) -> None:
    assert TopicTemplate(template).match(topic) == expected


def test_bad_templates() -> None:
    with pytest.raises(ValueError, match="last level"):
        TopicTemplate("rw/#/{site}")
    with pytest.raises(ValueError, match="bad placeholder"):
        TopicTemplate("rw/{site")
