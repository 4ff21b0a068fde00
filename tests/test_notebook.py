"""The exploration notebook runs end to end on the sample series (fast subset) and reports sane numbers."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import nbclient
import nbformat
import pytest
from jupyter_client.kernelspec import KernelSpecManager

pytestmark = pytest.mark.slow  # not in `make quick`

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK = REPO / "notebooks" / "explore.ipynb"


def test_committed_notebook_has_no_outputs():
    # Outputs (inline PNGs) would bloat the repository and go stale; the test below makes fresh ones.
    nb = nbformat.read(NOTEBOOK, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code
    assert all(not c.outputs and c.execution_count is None for c in code)


def test_python3_kernel_is_this_environment():
    # jupyter_client runs a kernel spec whose argv starts with "python" on sys.executable; a
    # "python3" spec from elsewhere (e.g. ~/.local/share/jupyter) would run another interpreter.
    spec = KernelSpecManager().get_kernel_spec("python3")
    assert spec.argv[0] in ("python", "python3", sys.executable), spec.argv


@pytest.fixture(scope="module")
def executed():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    mp = pytest.MonkeyPatch()
    mp.setenv("SKINSCAN_NOTEBOOK_FAST", "1")
    try:
        client = nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                                         resources={"metadata": {"path": str(REPO / "notebooks")}})
        client.execute()  # raises CellExecutionError, naming the cell, if any cell fails
    finally:
        mp.undo()
    return nb


def test_no_cell_errored(executed):
    errors = [o for c in executed.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors, [f"{e.ename}: {e.evalue}" for e in errors]
    assert all(c.execution_count is not None for c in executed.cells if c.cell_type == "code")


def test_figures_and_tables_are_rendered(executed):
    outputs = [o for c in executed.cells if c.cell_type == "code" for o in c.outputs]
    pngs = [o for o in outputs if "image/png" in o.get("data", {})]
    tables = [o for o in outputs if "text/html" in o.get("data", {}) and "<table" in o["data"]["text/html"]]
    # regions, canonical frame, metric maps, two trends, region grid, recovery chart
    assert len(pngs) >= 7
    # scale, quality, areas, metrics, photos, changes, recovery points, ground truth
    assert len(tables) >= 8


def test_summary_reports_a_plausible_series(executed):
    last = [c for c in executed.cells if c.cell_type == "code"][-1]
    printed = "".join(o.text for o in last.outputs if o.output_type == "stream" and o.name == "stdout")
    summary = json.loads(next(line for line in printed.splitlines() if line.startswith("{")))

    assert summary["fast"] is True
    # The kernel ran in this environment, on this checkout's skinscan.
    assert Path(summary["python_prefix"]) == Path(sys.prefix)
    assert Path(summary["skinscan_file"]).resolve().is_relative_to(REPO)

    # Baseline (2 photos), day-1 recovery (1) and last session (2): all analysed.
    assert summary["n_photos"] == 5
    assert summary["n_analysed"] == 5
    # The master is 11.8 px/mm and each photo is scaled by 0.92-1.08.
    assert 8.0 <= summary["px_per_mm"] <= 16.0
    assert abs(summary["ipd_agreement"] - 1.0) < 0.2
    # Injected redness falls from +4.0 to +0.5 a* (MDC about 0.2): it must read as improved.
    assert summary["face_labels"].get("improved", 0) >= 1
    assert summary["ground_truth_agrees"]["redness"] is True
