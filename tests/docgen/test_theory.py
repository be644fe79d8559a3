from pathlib import Path

from sepbench import theory
from sepbench.docgen import theory as docs

DOC = Path(__file__).resolve().parents[2] / "docs" / "theory.md"


def test_docs_theory_md_is_generated_from_the_catalogue() -> None:
    assert DOC.read_text() == docs.render_markdown(), (
        "docs/theory.md is stale: run `python -m sepbench.docgen.theory`"
    )


def test_every_result_has_a_section() -> None:
    text = docs.render_markdown()
    for rid in theory.ids():
        assert f"\n### {rid}\n" in text


def test_check_mode(tmp_path: Path) -> None:
    path = tmp_path / "theory.md"
    assert docs.main([str(path), "--check"]) == 1
    assert docs.main([str(path)]) == 0
    assert docs.main([str(path), "--check"]) == 0
    path.write_text(path.read_text() + "edit\n")
    assert docs.main([str(path), "--check"]) == 1
