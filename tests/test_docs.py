"""The documentation holds together: every page is reachable from the README, every link
between the pages (and to bench/RESULTS.md and the figures) lands on a file and a heading
that exist, and every flag of run.py and test.py is in the flags reference."""

import re

import pytest
from helpers import ROOT

from training.config import build_parser

DOCS = ROOT / "docs"
PAGES = [
    ROOT / "README.md",
    *sorted(DOCS.glob("*.md")),
    ROOT / "bench" / "RESULTS.md",
    ROOT / "quicknat" / "README.md",
    ROOT / "tests" / "data" / "real" / "README.md",
]
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", re.M | re.S)


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces -> '-'."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(page) -> set[str]:
    text = FENCE.sub("", page.read_text(encoding="utf-8"))
    return {slug(m) for m in re.findall(r"^#+ (.+)$", text, re.M)}


def links(page) -> list[str]:
    text = FENCE.sub("", page.read_text(encoding="utf-8"))
    return [t for t in LINK.findall(text) if not re.match(r"[a-z]+:", t)]


def test_every_docs_page_is_linked_from_the_readme_and_the_index():
    pages = {p.name for p in DOCS.glob("*.md")} - {"README.md"}
    readme = {t.split("#")[0] for t in links(ROOT / "README.md")}
    index = {t.split("#")[0] for t in links(DOCS / "README.md")}
    assert "docs/README.md" in readme
    assert {f"docs/{name}" for name in pages} <= readme
    assert pages <= index


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_lands_on_a_file_and_heading(page):
    broken = []
    for target in links(page):
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        if not file.exists():
            broken.append(f"{target}: no such file")
        elif anchor and file.suffix == ".md" and anchor not in anchors(file):
            broken.append(f"{target}: no such heading")
    assert broken == []


def options(help_text: str) -> set[str]:
    """The option strings of an argparse help text (the column before the descriptions)."""
    found = set()
    for line in help_text.splitlines():
        if line.startswith("  -"):
            invocation = re.split(r"\s{2,}", line.strip())[0]
            found |= set(re.findall(r"(?<![\w-])--?[a-zA-Z][\w-]*", invocation))
    return found - {"-h", "--help"}


def flags_section(command: str) -> str:
    text = (DOCS / "reference_flags.md").read_text(encoding="utf-8")
    return text.split(f"## `{command}`")[1].split("\n## ")[0]


def test_every_flag_of_run_py_is_in_the_flags_reference(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["-h"])
    flags = options(capsys.readouterr().out)
    assert {"--datapath", "--start-from", "--no-channels-last"} <= flags
    section = flags_section("run.py")
    assert [f for f in sorted(flags) if f"`{f}`" not in section] == []


def test_every_flag_of_test_py_is_in_the_flags_reference(measure_cli, capsys):
    with pytest.raises(SystemExit):
        measure_cli.parse_args(["-h"])
    flags = options(capsys.readouterr().out)
    assert {"--datapath", "--subjects", "--no-report"} <= flags
    section = flags_section("test.py")
    assert [f for f in sorted(flags) if f"`{f}`" not in section] == []
