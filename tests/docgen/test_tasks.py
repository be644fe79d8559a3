from pathlib import Path

from sepbench import tasks
from sepbench.docgen import tasks as docs

DOC = Path(__file__).resolve().parents[2] / "docs" / "tasks.md"


def test_every_task_has_a_documented_example() -> None:
    assert set(docs.EXAMPLES) == set(tasks.names())


def test_docs_tasks_md_is_generated_from_the_registry() -> None:
    assert DOC.read_text() == docs.render_markdown(), (
        "docs/tasks.md is stale: run `python -m sepbench.docgen.tasks`"
    )
