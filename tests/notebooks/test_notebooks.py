"""The analysis notebooks run top to bottom (nbclient, the venv's kernel) on a real pipeline's warehouse."""
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

pytestmark = pytest.mark.integration
NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"


def execute(name: str, var: Path, monkeypatch) -> nbformat.NotebookNode:
    monkeypatch.setenv("SPOTON_VAR", str(var))  # the kernel inherits the environment
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    NotebookClient(notebook, timeout=120, kernel_name="python3",
                   resources={"metadata": {"path": str(NOTEBOOKS)}}).execute()
    return notebook


def outputs(notebook) -> str:
    texts = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            texts.append(output.get("text", "") + str(output.get("data", {}).get("text/plain", "")))
    return "\n".join(texts)


def images(notebook) -> int:
    return sum("image/png" in o.get("data", {}) for c in notebook.cells for o in c.get("outputs", []))


def test_occupancy_and_dwell_notebook(pipeline_var, monkeypatch):
    notebook = execute("occupancy_dwell.ipynb", pipeline_var, monkeypatch)
    text = outputs(notebook)
    assert images(notebook) >= 2, "occupancy and dwell plots"
    for zone in ("crossing", "south_path"):
        assert zone in text
    assert "cam1" in text and "cam2" in text and "cam3" in text, "people per minute per camera"


def test_reid_quality_notebook_reports_separation_and_cross_camera_matches(writable_pipeline_var, monkeypatch):
    import sys

    sys.path.insert(0, str(NOTEBOOKS.parent / "apps" / "streamlit"))
    import review_data as rd
    from spoton.identity.overrides import Override, append_override

    paths = rd.ReviewPaths.from_var(writable_pipeline_var)
    first = rd.identities(paths, "pets_s2l1")["tracklet_id"].iloc[0]
    append_override(rd.lake(paths), "pets_s2l1", Override("split", "notebook-test", first))
    rd.build_catalog(rd.lake(paths), paths.catalog)

    notebook = execute("reid_quality.ipynb", writable_pipeline_var, monkeypatch)
    text = outputs(notebook)
    assert images(notebook) >= 1
    auc = float(text.split("appearance AUC (same vs different identity): ")[1].split()[0])
    assert 0.5 < auc <= 1.0, "the resolver's same-identity pairs look more alike than different ones"
    assert "seen by 2+ cameras" in text and "cam1 - cam2" in text
    assert "notebook-test" in text, "the corrections table is shown"
