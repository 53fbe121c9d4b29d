"""What a newcomer reads first: the README and the architecture record."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_readme_links_the_guide_and_the_validation_record():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    links = re.findall(r"\]\(([^)]+)\)", text)
    assert "docs/twin.md" in links and "docs/validation.md" in links
    for link in links:
        if not link.startswith("http"):
            assert (ROOT / link).is_file(), link
    assert "1 (`True`) = pore" in text  # the binary-image convention
    assert re.search(r"test suite \(about [\d–-]+ minutes on 2 cores", text)


def test_readme_keeps_exactly_two_set_up_commands():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    setup = text.split("## Set-up on a fresh machine", 1)[1].split("\n## ", 1)[0]
    commands = re.findall(r"```bash\n(.*?)```", setup, flags=re.S)
    assert [c.strip() for c in commands] == [
        "python3 -m pip install -e . && microbat demo --out microbat-demo",
        'python3 -m pip install -e ".[test]" && python3 -m pytest',
    ]


def test_architecture_links_nothing_outside_the_repository():
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    for ref in re.findall(r"`([^`\s]+\.(?:md|py|toml))`|\]\(([^)]+)\)", text):
        path = next(r for r in ref if r)
        assert not path.startswith(("../", "/")) and "://" not in path, path
    assert "../" not in text
