"""HTML pages: headings, paragraphs, ordered lists as steps, tables; scripts and menus dropped."""

from __future__ import annotations

from bs4 import BeautifulSoup, Tag

from allo.domain import ParsedDocument
from allo.knowledge.ingest.parsers.base import decode_text, title_from_name
from allo.knowledge.ingest.parsers.sections import SectionBuilder

_SKIP = ("script", "style", "nav", "header", "footer", "aside", "form", "noscript", "template")
_BLOCKS = ("p", "ol", "ul", "table", "pre", "blockquote", "dl")
_HEADINGS = ("h1", "h2", "h3", "h4", "h5", "h6")


def _text(tag: Tag) -> str:
    return " ".join(tag.get_text(" ", strip=True).split())


def _list_block(tag: Tag) -> tuple[str, str]:
    items = [_text(item) for item in tag.find_all("li", recursive=False)]
    if tag.name == "ol":
        return "\n".join(f"{i}. {item}" for i, item in enumerate(items, 1) if item), "steps"
    return "\n".join(f"- {item}" for item in items if item), "list"


def _table_block(tag: Tag) -> str:
    rows = []
    for row in tag.find_all("tr"):
        cells = [_text(cell) for cell in row.find_all(("td", "th"))]
        if any(cells):
            rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)


def parse_html(data: bytes, name: str) -> list[ParsedDocument]:
    """Parse an HTML file (UTF-8)."""
    soup = BeautifulSoup(decode_text(data, name), "lxml")
    for tag in soup.find_all(_SKIP):
        tag.decompose()
    builder = SectionBuilder()
    first_heading: str | None = None
    root = soup.body or soup
    for tag in root.find_all((*_HEADINGS, *_BLOCKS, "div", "section", "article")):
        if not isinstance(tag, Tag):
            continue
        if tag.name in _HEADINGS:
            title = _text(tag)
            first_heading = first_heading or title
            builder.heading(int(tag.name[1]), title)
        elif tag.name in ("ol", "ul"):
            if tag.find_parent(("ol", "ul", "table")) is None:
                text, kind = _list_block(tag)
                builder.block(text, kind)
        elif tag.name == "table":
            if tag.find_parent("table") is None:
                builder.block(_table_block(tag), "table")
        elif tag.name in ("div", "section", "article"):
            # Text sitting directly in a container (no <p>) would otherwise be lost.
            own = " ".join(
                str(child).strip() for child in tag.children if isinstance(child, str)
            ).strip()
            builder.block(" ".join(own.split()))
        elif tag.find_parent((*_BLOCKS,)) is None:
            builder.block(_text(tag))
    title_tag = soup.find("title")
    page_title = _text(title_tag) if isinstance(title_tag, Tag) and _text(title_tag) else None
    html_tag = soup.find("html")
    lang = html_tag.get("lang") if isinstance(html_tag, Tag) else None
    return [
        ParsedDocument(
            title=page_title or first_heading or title_from_name(name),
            sections=builder.sections(),
            lang=str(lang).split("-")[0].lower() if lang else None,
        )
    ]
