"""The shape of the repository, checked: the library never imports its faces, and the docs' links resolve."""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from conftest import ROOT

QA = ROOT / "qa"
# The faces: the command line and the Gradio page. Nothing in the library imports them.
FACES = {"qa.cli", "qa.__main__", "qa.feedback.cli", "app"}
UI = "qa.ui"  # the chat's library side: only the faces import it


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(path: Path, root: Path = ROOT) -> set[str]:
    """Every module ``path`` imports (``from a import b`` counts as a and as a.b: b may be a module)."""
    name = module_name(path, root)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(up + ([base] if base else []))
            out.add(base)
            out.update(f"{base}.{a.name}" for a in node.names)
    return out


def within(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


LIBRARY = sorted(p for p in QA.rglob("*.py") if module_name(p) not in FACES)


@pytest.mark.parametrize("path", LIBRARY, ids=lambda p: str(p.relative_to(ROOT)))
def test_the_library_never_imports_upward(path):
    """qa/ is layered under its faces: no library module imports the CLI, app.py or Gradio, and only the faces
    import the UI package (qa/ui/ itself imports neither the CLI, app.py nor Gradio: it is tested without them)."""
    name = module_name(path)
    forbidden = [m for m in imported(path)
                 if m in FACES or within(m, "gradio") or (within(m, UI) and not within(name, UI))]
    assert forbidden == [], f"{name} imports {forbidden}: the library must not depend on its faces"


# The answering path (files -> chunks -> index -> passages -> answer) does not depend on measuring, serving or feedback.
PIPELINE = ("qa.ingest", "qa.models", "qa.store", "qa.reading", "qa.chunking", "qa.retrieve")
ABOVE_PIPELINE = ("qa.eval", "qa.serving", "qa.feedback")


@pytest.mark.parametrize("path", [p for p in LIBRARY if module_name(p).startswith(PIPELINE)],
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_the_answering_stages_do_not_import_evaluation_serving_or_feedback(path):
    forbidden = [m for m in imported(path) if any(within(m, top) for top in ABOVE_PIPELINE)]
    assert forbidden == [], f"{module_name(path)} imports {forbidden}"


def test_the_layering_check_sees_upward_imports(tmp_path):
    """The check above can fail: a module that imports the CLI, relatively or not, is caught."""
    bad = QA / "store" / "index.py"
    assert "qa.cli" not in imported(bad)
    src = tmp_path / "qa" / "store" / "bad.py"
    src.parent.mkdir(parents=True)
    src.write_text("from ..cli import main\nfrom qa.ui import render\nimport app\n")
    assert {"qa.cli", "qa.cli.main", "qa.ui", "qa.ui.render", "app"} <= imported(src, tmp_path)


LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), ROOT / "training" / "README.md"]


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_in_the_docs_resolve(doc):
    text = doc.read_text(encoding="utf-8")
    text = re.sub(r"```.*?```", "", text, flags=re.S)  # code blocks hold no links
    broken = []
    for target in LINK.findall(text):
        if re.match(r"[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
            continue  # a URL (http:, mailto:) or an anchor on the same page
        file, _, anchor = target.partition("#")
        path = (doc.parent / file).resolve() if file else doc
        if not path.exists():
            broken.append(target)
        elif anchor and path.suffix == ".md" and anchor not in anchors(path):
            broken.append(target)
    assert broken == [], f"{doc.relative_to(ROOT)} links to missing files or headings: {broken}"


def anchors(doc: Path) -> set[str]:
    """The anchors GitHub gives a Markdown file's headings: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"```.*?```", "", doc.read_text(encoding="utf-8"), flags=re.S)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-")
            for h in re.findall(r"^#{1,6}\s+(.+?)\s*#*$", text, flags=re.M)}


def test_every_library_module_imports():
    """Parsing the imports (above) cannot see a name that is gone: import each module of qa/ for real."""
    import importlib

    for path in sorted((ROOT / "qa").rglob("*.py")):
        name = module_name(path)
        if name.endswith("__main__"):
            continue
        if name.startswith("qa.serving.ray_serve") or name.startswith("qa.store.distributed"):
            pytest.importorskip("ray")
        importlib.import_module(name)



def test_the_readme_is_a_front_door():
    """Short, and it shows the two commands (a pre-stop hook greps for them too); the detail lives in docs/."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(text.splitlines()) < 250
    assert "make run" in text and "make test" in text
    for doc in ("accuracy", "performance", "reliability", "architecture"):
        assert f"docs/{doc}.md" in text
