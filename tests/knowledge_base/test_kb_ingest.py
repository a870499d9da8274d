"""Adding staff documents: each format, scanned PDFs, replace and remove, hot reload, the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import matplotlib
import numpy as np
import pytest
from tokenizers import Tokenizer

from bot.settings import PROJECT_ROOT
from knowledge_base.index import KnowledgeIndex
from knowledge_base.ingest import IngestError, add_file, add_paths, extract, remove, slugify
from knowledge_base.retrieval import Retriever

matplotlib.use("Agg")
import matplotlib.pyplot as plt

WORD = "zyxcompost"
"""A made-up word, so a lexical search finds only the document that contains it."""
PARAGRAPH = (
    f"Workshops can turn fruit peel into {WORD} within eight weeks. Keep the pile moist and turn it "
    "every week. Use the compost on the factory garden and record the weight each month."
)


def make_pdf(path: Path, lines: list[str]) -> Path:
    """Write a one-page PDF with a real text layer (TrueType fonts keep the text extractable)."""
    with matplotlib.rc_context({"pdf.fonttype": 42}):
        figure = plt.figure(figsize=(8.27, 11.69))
        for number, line in enumerate(lines):
            figure.text(0.05, 0.95 - number * 0.03, line, fontsize=10)
        figure.savefig(path, format="pdf")
        plt.close(figure)
    return path


def make_scanned_pdf(path: Path) -> Path:
    """Write a PDF that holds only an image, as a scanner produces."""
    figure = plt.figure(figsize=(4, 4))
    axes = figure.add_axes((0, 0, 1, 1))
    axes.imshow(np.random.default_rng(1).random((64, 64)), cmap="gray")
    axes.axis("off")
    figure.savefig(path, format="pdf")
    plt.close(figure)
    return path


def make_docx(path: Path, heading: str, paragraphs: list[str]) -> Path:
    import docx

    document = docx.Document()
    document.core_properties.title = heading
    document.add_heading(heading, level=1)
    for paragraph in paragraphs:
        document.add_paragraph(paragraph)
    document.add_paragraph("Weigh the compost every month", style="List Bullet")
    document.save(str(path))
    return path


def make_html(path: Path, title: str, paragraphs: list[str]) -> Path:
    body = "".join(f"<p>{paragraph}</p>" for paragraph in paragraphs)
    path.write_text(
        f"<html><head><title>{title}</title></head><body><nav><a href='/'>Home</a> <a href='/x'>Menu</a></nav>"
        f"<article><h1>{title}</h1>{body}</article><footer>Copyright</footer></body></html>",
        encoding="utf-8",
    )
    return path


@pytest.fixture
def index(fake_embedder, tokenizer: Tokenizer) -> KnowledgeIndex:
    return KnowledgeIndex(fake_embedder, tokenizer)


def found(index: KnowledgeIndex, word: str) -> list[str]:
    return [hit.article_id for hit in Retriever(index, "lexical", decline_below=0.0).search(word, "en")]


def test_pdf_text_is_extracted_and_indexed(tmp_path: Path, index: KnowledgeIndex, content_dir: Path) -> None:
    pdf = make_pdf(tmp_path / "Compost guide.pdf", ["Composting fruit peel", *PARAGRAPH.split(". ")])
    result = add_file(pdf, index, tmp_path / "imports", content_dir, language="en")
    assert result.document_id == "compost-guide.en"
    assert not result.replaced
    assert result.change.added >= 1
    assert found(index, WORD) == ["compost-guide"]
    stored = (tmp_path / "imports" / "en" / "compost-guide.md").read_text(encoding="utf-8")
    assert "imported_from: Compost guide.pdf" in stored
    index.check_consistency()


def test_scanned_pdf_gives_clear_error(tmp_path: Path, index: KnowledgeIndex, content_dir: Path) -> None:
    scan = make_scanned_pdf(tmp_path / "scan.pdf")
    with pytest.raises(IngestError, match=r"no text layer.*OCR"):
        add_file(scan, index, tmp_path / "imports", content_dir, language="en")
    assert len(index) == 0
    assert not (tmp_path / "imports" / "en" / "scan.md").exists()


def test_docx_headings_and_lists_are_kept(tmp_path: Path, index: KnowledgeIndex, content_dir: Path) -> None:
    path = make_docx(tmp_path / "notes.docx", "Compost from fruit peel", [PARAGRAPH])
    document = extract(path, language="en")
    assert document.title == "Compost from fruit peel"
    assert "## Compost from fruit peel" in document.body
    assert "- Weigh the compost every month" in document.body
    add_file(path, index, tmp_path / "imports", content_dir, language="en", article_id="peel-compost")
    assert found(index, WORD) == ["peel-compost"]


def test_html_main_text_without_navigation(tmp_path: Path, index: KnowledgeIndex, content_dir: Path) -> None:
    path = make_html(tmp_path / "page.html", "Compost at the workshop", [PARAGRAPH, "Ask your staff to sort peel from plastic."])
    document = extract(path)
    assert document.language == "en"
    assert document.title == "Compost at the workshop"
    assert WORD in document.body
    assert "Menu" not in document.body
    assert "Copyright" not in document.body
    add_file(path, index, tmp_path / "imports", content_dir)
    assert found(index, WORD) == ["page"]


def test_markdown_front_matter_is_used(tmp_path: Path, index: KnowledgeIndex, content_dir: Path) -> None:
    path = tmp_path / "x.md"
    path.write_text(
        "---\nid: phan-compost\ntitle: Ủ phân từ vỏ trái cây\nlanguage: vi\ntopics: [waste]\n---\n\n"
        f"Xưởng có thể ủ {WORD} từ vỏ trái cây.\n",
        encoding="utf-8",
    )
    result = add_file(path, index, tmp_path / "imports", content_dir)
    assert result.document_id == "phan-compost.vi"
    assert index.documents["phan-compost.vi"].title == "Ủ phân từ vỏ trái cây"


def test_unsupported_and_empty_files_are_refused(tmp_path: Path, index: KnowledgeIndex, content_dir: Path) -> None:
    other = tmp_path / "sheet.xlsx"
    other.write_bytes(b"PK")
    with pytest.raises(IngestError, match=r"unsupported file type .\.xlsx."):
        add_file(other, index, tmp_path / "imports", content_dir)
    broken = tmp_path / "broken.pdf"
    broken.write_bytes(b"%PDF-1.4 not really")
    with pytest.raises(IngestError, match=r"broken\.pdf"):
        add_file(broken, index, tmp_path / "imports", content_dir, language="en")
    no_language = tmp_path / "digits.md"
    no_language.write_text("12345 67890", encoding="utf-8")
    with pytest.raises(IngestError, match="no text"):
        add_file(no_language, index, tmp_path / "imports", content_dir)


def test_curated_article_id_is_refused(tmp_path: Path, index: KnowledgeIndex, content_dir: Path) -> None:
    path = make_html(tmp_path / "fsc-wood.html", "FSC wood", [PARAGRAPH])
    with pytest.raises(IngestError, match="curated article"):
        add_file(path, index, tmp_path / "imports", content_dir, language="en")


def test_replace_and_remove_consistency(tmp_path: Path, fake_embedder, index: KnowledgeIndex, content_dir: Path) -> None:
    imports = tmp_path / "imports"
    path = make_html(tmp_path / "guide.html", "Compost guide", [PARAGRAPH, "Second paragraph about sorting waste bins."])
    add_file(path, index, imports, content_dir, language="en")
    first_ids = set(index.chunks)

    # Unchanged file: nothing is embedded again and the ids stay.
    fake_embedder.embedded.clear()
    again = add_file(path, index, imports, content_dir, language="en")
    assert again.replaced
    assert again.change.added == 0
    assert fake_embedder.embedded == []
    assert set(index.chunks) == first_ids

    # Changed file: the new text replaces the old one and old ids are never reused.
    make_html(path, "Compost guide", ["Only one paragraph now, about quickcompostword and nothing else."])
    changed = add_file(path, index, imports, content_dir, language="en")
    assert changed.replaced
    assert changed.change.added >= 1
    assert found(index, WORD) == []
    assert found(index, "quickcompostword") == ["guide"]
    assert not (set(index.chunks) & first_ids - {index.chunk_int_ids[c] for c in index.documents["guide.en"].chunk_ids})
    assert min(set(index.chunks) - first_ids, default=index.next_id) > max(first_ids)
    index.check_consistency()

    assert remove("guide", index, imports) == ["guide.en"]
    assert len(index) == 0
    assert "guide.en" not in index.documents
    assert not (imports / "en" / "guide.md").exists()
    index.check_consistency()
    with pytest.raises(IngestError, match="No added document"):
        remove("guide", index, imports)


def test_build_keeps_added_documents(tmp_path: Path, fake_embedder, tokenizer: Tokenizer, content_dir: Path) -> None:
    imports = tmp_path / "imports"
    index = KnowledgeIndex(fake_embedder, tokenizer)
    index.build(content_dir, imports)
    add_file(make_html(tmp_path / "guide.html", "Compost guide", [PARAGRAPH]), index, imports, content_dir, language="en")
    report = index.build(content_dir, imports)
    assert report.documents_removed == 0
    assert report.chunks_embedded == 0
    assert found(index, WORD) == ["guide"]
    # Without the import folder, a build drops the document again.
    index.build(content_dir)
    assert found(index, WORD) == []


def test_folder_adds_every_supported_file(tmp_path: Path, index: KnowledgeIndex, content_dir: Path) -> None:
    folder = tmp_path / "dropped"
    folder.mkdir()
    make_html(folder / "one.html", "One", [PARAGRAPH])
    make_docx(folder / "two.docx", "Two", [PARAGRAPH])
    make_scanned_pdf(folder / "three.pdf")
    (folder / "notes.txt").write_text("ignored", encoding="utf-8")
    seen: list[str] = []
    results, errors = add_paths(
        [folder], index, tmp_path / "imports", content_dir, "en", on_file=lambda path, _: seen.append(path.name)
    )
    assert sorted(result.document_id for result in results) == ["one.en", "two.en"]
    assert len(errors) == 1
    assert "three.pdf" in str(errors[0])
    assert sorted(seen) == ["one.html", "three.pdf", "two.docx"]
    with pytest.raises(IngestError, match="single file"):
        add_paths([folder], index, tmp_path / "imports", content_dir, "en", article_id="x")


def test_slugify_folds_vietnamese() -> None:
    assert slugify("Hướng dẫn Đóng gói 2027") == "huong-dan-dong-goi-2027"
    assert slugify("ລາວ") == ""


def test_hot_reload_between_two_retrievers(tmp_path: Path, fake_embedder, tokenizer: Tokenizer, content_dir: Path) -> None:
    index_dir = tmp_path / "index"
    writer = KnowledgeIndex(fake_embedder, tokenizer)
    writer.build(content_dir)
    writer.save(index_dir)
    reader = Retriever(
        KnowledgeIndex.load(index_dir, fake_embedder, tokenizer), "lexical", decline_below=0.0, index_dir=index_dir
    )
    assert reader.search(WORD, "en") == []
    assert reader.maybe_reload(wait=True) is False  # Nothing new yet.

    add_file(make_html(tmp_path / "guide.html", "Compost guide", [PARAGRAPH]), writer, tmp_path / "imports", content_dir, "en")
    writer.save(index_dir)
    old_index = reader.index
    assert reader.maybe_reload(wait=True) is True
    assert reader.index is not old_index
    assert [hit.article_id for hit in reader.search(WORD, "en")] == ["guide"]

    # A corrupt new version is not served: the retriever keeps the index it has.
    writer.remove_document("guide.en")
    broken = writer.save(index_dir)
    (broken / "chunks.json").write_text("{", encoding="utf-8")
    assert reader.maybe_reload(wait=True) is False
    assert [hit.article_id for hit in reader.search(WORD, "en")] == ["guide"]


def _spin(*arguments: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(Path(sys.executable).with_name("spin")), *arguments],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_cli_add_remove_and_ask(tmp_path: Path, e5_model_dir: Path, content_dir: Path) -> None:
    env = {
        **os.environ,
        "VAR_DIR": str(tmp_path / "var"),
        "EMBEDDING_MODEL": str(e5_model_dir),
        "KB_CONTENT_DIR": str(content_dir),
    }
    folder = tmp_path / "dropped"
    folder.mkdir()
    make_html(folder / "compost.html", "Composting fruit peel at the workshop", [PARAGRAPH])
    make_scanned_pdf(folder / "scan.pdf")
    added = _spin("kb", "add", str(folder), "--lang", "en", env=env)
    assert added.returncode == 1, added.stderr  # The scan fails; the HTML file is still added.
    assert "Added compost.en" in added.stdout
    assert "no text layer" in added.stdout
    asked = _spin("ask", f"How long does {WORD} from fruit peel take?", "--lang", "en", "--json", env=env)
    assert asked.returncode == 0, asked.stderr
    reply = json.loads(asked.stdout)
    assert set(reply) == {"answer", "language", "sources"}
    assert reply["sources"][0]["id"] == "compost"
    assert set(reply["sources"][0]) == {"id", "title", "score"}

    removed = _spin("kb", "remove", "compost", env=env)
    assert removed.returncode == 0, removed.stderr
    assert not (tmp_path / "var" / "kb-imports" / "en" / "compost.md").exists()
    missing = _spin("kb", "remove", "compost", env=env)
    assert missing.returncode == 1
    assert "No added document" in missing.stderr
