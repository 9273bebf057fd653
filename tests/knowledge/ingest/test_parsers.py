"""Each format gives titles, heading paths and procedure steps; bad files fail clearly."""

from __future__ import annotations

import io
import json

import docx
import pytest
from pypdf import PdfReader, PdfWriter

from allo.errors import (
    CorruptFileError,
    EmptyDocumentError,
    InvalidInputError,
    UnsupportedFormatError,
)
from allo.knowledge.ingest.parsers import parse_bytes
from tests.knowledge.ingest.pdfs import simple_pdf

MARKDOWN = """---
title: "Changer le mot de passe Wi-Fi"
tags: [wifi, securite]
lang: fr
---
# Changer le mot de passe Wi-Fi

Le mot de passe protège votre **réseau**.

## Étapes

1. Ouvrez http://192.168.1.1.
2. Allez dans *Wi-Fi*.
3. Saisissez la [nouvelle clé](https://exemple.invalid).

## Bon à savoir

- Au moins 12 caractères.
- Évitez votre date de naissance.
"""


def test_markdown_front_matter_headings_and_steps() -> None:
    [doc] = parse_bytes(MARKDOWN.encode(), "wifi.md")
    assert doc.title == "Changer le mot de passe Wi-Fi"
    assert doc.tags == ("wifi", "securite")
    assert doc.lang == "fr"
    kinds = {section.heading_path[-1]: section.kind for section in doc.sections}
    assert kinds["Étapes"] == "steps"
    assert kinds["Bon à savoir"] == "list"
    steps = next(s for s in doc.sections if s.kind == "steps")
    assert steps.heading_path == ("Changer le mot de passe Wi-Fi", "Étapes")
    assert steps.text.count("\n") == 2
    assert "**" not in doc.text and "https://" not in doc.text and "*Wi-Fi*" not in doc.text


def test_markdown_without_front_matter_takes_first_heading() -> None:
    [doc] = parse_bytes(b"Intro\n\n# Facture\n\nTexte.", "x.md")
    assert doc.title == "Facture"


def test_invalid_front_matter_is_named() -> None:
    with pytest.raises(InvalidInputError, match="front matter"):
        parse_bytes(b"---\ntitle: [unclosed\n---\n# T\ntext", "bad.md")


def test_html_drops_scripts_and_menus_and_keeps_ordered_lists_as_steps() -> None:
    page = """<html lang="fr-FR"><head><title>Décodeur TV</title><script>alert(1)</script></head>
    <body><nav>Accueil | Offres</nav><h1>Installer le décodeur</h1><p>Avant tout, vérifiez.</p>
    <h2>Étapes</h2><ol><li>Branchez le HDMI.</li><li>Allumez.</li></ol>
    <table><tr><th>Voyant</th><th>Sens</th></tr><tr><td>Rouge</td><td>Veille</td></tr></table>
    <footer>Mentions légales</footer></body></html>"""
    [doc] = parse_bytes(page.encode(), "tv.html")
    assert doc.title == "Décodeur TV"
    assert doc.lang == "fr"
    assert "alert" not in doc.text and "Accueil" not in doc.text and "Mentions" not in doc.text
    steps = [s for s in doc.sections if s.kind == "steps"]
    assert steps and steps[0].text == "1. Branchez le HDMI.\n2. Allumez."
    assert steps[0].heading_path == ("Installer le décodeur", "Étapes")
    assert any(s.kind == "table" and "Rouge" in s.text for s in doc.sections)


def test_pdf_text_is_extracted() -> None:
    data = simple_pdf(["Guide de la fibre", "1. Branchez la PTO.", "2. Attendez le voyant blanc."])
    [doc] = parse_bytes(data, "guide.pdf")
    assert doc.title == "Guide de la fibre"
    assert "Branchez la PTO" in doc.text


def test_encrypted_pdf_is_refused_with_advice() -> None:
    reader = PdfReader(io.BytesIO(simple_pdf(["Secret"])))
    writer = PdfWriter()
    for page in reader.pages:
        writer.add_page(page)
    writer.encrypt("motdepasse")
    out = io.BytesIO()
    writer.write(out)
    with pytest.raises(CorruptFileError, match="encrypted"):
        parse_bytes(out.getvalue(), "locked.pdf")


@pytest.mark.parametrize("data", [b"%PDF-1.4\n garbage garbage", b"not a pdf at all"])
def test_corrupt_pdf_is_refused(data: bytes) -> None:
    with pytest.raises(CorruptFileError, match=r"broken\.pdf"):
        parse_bytes(data, "broken.pdf")


def test_docx_headings_and_numbered_lists() -> None:
    document = docx.Document()
    document.add_heading("Résilier son contrat", level=1)
    document.add_paragraph("Vous pouvez résilier à tout moment.")
    document.add_heading("Procédure", level=2)
    document.add_paragraph("Connectez-vous.", style="List Number")
    document.add_paragraph("Choisissez Résilier.", style="List Number")
    buffer = io.BytesIO()
    document.save(buffer)
    [doc] = parse_bytes(buffer.getvalue(), "resiliation.docx")
    assert doc.title == "Résilier son contrat"
    steps = [s for s in doc.sections if s.kind == "steps"]
    assert steps[0].text == "1. Connectez-vous.\n2. Choisissez Résilier."
    assert steps[0].heading_path == ("Résilier son contrat", "Procédure")


def test_corrupt_docx() -> None:
    with pytest.raises(CorruptFileError):
        parse_bytes(b"PK\x03\x04 not really a zip", "x.docx")


def test_jsonl_records() -> None:
    lines = [
        {
            "id": "a1",
            "title": "Roaming",
            "text": "En Europe, vos forfaits s'appliquent.",
            "tags": ["mobile"],
        },
        {
            "id": "a2",
            "title": "PUK",
            "text": "Le code PUK débloque la SIM.",
            "url": "https://x.invalid/puk",
            "lang": "fr",
        },
    ]
    data = "\n".join(json.dumps(line) for line in lines).encode()
    docs = parse_bytes(data, "kb.jsonl")
    assert [d.external_id for d in docs] == ["a1", "a2"]
    assert docs[0].tags == ("mobile",) and docs[1].url == "https://x.invalid/puk"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b'{"id": "a", "text": "ok"}\n{broken', "line 2: invalid JSON"),
        (b'{"title": "no id", "text": "x"}', "line 1: missing id"),
        (b'{"id": "a", "text": "x"}\n{"id": "a", "text": "y"}', "appears twice"),
        (b'["a list"]', "expected an object"),
    ],
)
def test_jsonl_errors_name_the_line(content: bytes, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        parse_bytes(content, "kb.jsonl")


def test_wrong_encoding_is_refused_with_a_fix() -> None:
    with pytest.raises(InvalidInputError, match=r"not valid UTF-8.*iconv"):
        parse_bytes("Facture détaillée".encode("latin-1"), "facture.txt")


def test_utf16_with_bom_is_read() -> None:
    [doc] = parse_bytes("Ligne fixe\n\nLa box gère la VoIP.".encode("utf-16"), "voip.txt")
    assert doc.title == "Ligne fixe"


@pytest.mark.parametrize("data", [bytes(range(256)) * 8, b"\x00\x01\x02binary\x00"])
def test_binary_junk_is_refused(data: bytes) -> None:
    with pytest.raises((CorruptFileError, InvalidInputError)):
        parse_bytes(data, "junk.txt")


@pytest.mark.parametrize("data", [b"", b"   \n\n  "])
def test_empty_files_are_refused(data: bytes) -> None:
    with pytest.raises(EmptyDocumentError, match="empty"):
        parse_bytes(data, "vide.md")


def test_markdown_with_no_text_is_empty() -> None:
    with pytest.raises(EmptyDocumentError):
        parse_bytes(b"---\ntitle: x\n---\n", "x.md")


def test_unknown_suffix_lists_the_supported_ones() -> None:
    with pytest.raises(UnsupportedFormatError, match=r"\.exe.*\.md"):
        parse_bytes(b"MZ", "setup.exe")
