"""The sample series measures the same before and after a change that is meant to change no number.

``tests/data/reference/sample_series.json`` holds what the pipeline measured on ``sample_images/``:
every row of ``results.csv`` and a summary of every metric map of the first and last photo. It was
written before the restructuring of the code (issue "A house a newcomer can carry on") and is
rewritten only when a change is *meant* to change numbers (and ``PIPELINE_VERSION`` with it)::

    python tests/test_reference.py        # rewrite the reference after a deliberate change

A map is compared through moments (count, sum, sum of squares, and the sums weighted by x and y),
which move with any change of its values or their place, to 1e-9 relative.
"""
from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "sample_images"
REFERENCE = Path(__file__).parent / "data" / "reference" / "sample_series.json"
RTOL = 1e-9

pytestmark = pytest.mark.slow


def _map_moments(m: np.ndarray) -> dict:
    m = np.asarray(m, dtype=np.float64)
    finite = np.isfinite(m)
    y, x = np.nonzero(finite)
    v = m[finite]
    return {"shape": list(m.shape), "n": int(finite.sum()), "sum": float(v.sum()), "sum2": float((v * v).sum()),
            "sum_x": float((v * x).sum()), "sum_y": float((v * y).sum())}


def snapshot(out_dir: Path) -> dict:
    """What the reference holds, measured now: the batch's results rows and the end photos' maps."""
    from skinscan import analyse_photo
    from skinscan.batch import run_batch
    from skinscan.outputs import export_tables

    res = run_batch([SAMPLES], out_dir, jobs=1, progress=False, overlays=False)
    from skinscan.store import ResultStore
    with ResultStore(out_dir / "skinscan.db") as store:
        export_tables(store, out_dir)
    table = pd.read_csv(out_dir / "results.csv")
    table["photo"] = [Path(p).name for p in table["photo"]]
    table = table.sort_values(["photo", "region", "metric"]).reset_index(drop=True)
    rows = [[None if isinstance(v, float) and math.isnan(v) else v for v in r]
            for r in table.astype(object).itertuples(index=False)]
    photos = sorted(p for p in SAMPLES.rglob("*.jpg"))
    maps = {}
    for p in (photos[0], photos[-1]):
        a = analyse_photo(p, keep_maps=True)
        maps[p.name] = {name: _map_moments(m) for name, m in sorted(a.maps.items())}
    return {"n_analysed": res.n_analysed, "columns": list(table.columns), "rows": rows, "maps": maps}


def _close(a, b) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        if a is None or b is None:
            return a is None and b is None
        return math.isclose(float(a), float(b), rel_tol=RTOL, abs_tol=1e-12)
    return a == b


def test_sample_series_measures_as_the_reference(tmp_path):
    ref = json.loads(REFERENCE.read_text())
    now = json.loads(json.dumps(snapshot(tmp_path)))  # the same JSON round trip as the file's
    assert now["n_analysed"] == ref["n_analysed"]
    assert now["columns"] == ref["columns"]
    assert len(now["rows"]) == len(ref["rows"])
    cols = ref["columns"]
    differ = [(r[:3], cols[i], r[i], n[i]) for r, n in zip(ref["rows"], now["rows"])
              for i in range(len(cols)) if not _close(r[i], n[i])]
    assert not differ, f"{len(differ)} values differ, first: {differ[:5]}"
    assert now["maps"].keys() == ref["maps"].keys()
    for photo, maps in ref["maps"].items():
        assert now["maps"][photo].keys() == maps.keys(), photo
        for name, mom in maps.items():
            got = now["maps"][photo][name]
            bad = {k: (v, got[k]) for k, v in mom.items() if not _close(v, got[k])}
            assert not bad, f"{photo} {name} map moved: {bad}"


if __name__ == "__main__":
    import tempfile
    with tempfile.TemporaryDirectory() as d:
        snap = snapshot(Path(d))
    REFERENCE.parent.mkdir(parents=True, exist_ok=True)
    rows = ",\n".join(json.dumps(r) for r in snap.pop("rows"))  # a row a line: a diff shows what moved
    head = ",\n".join(f"{json.dumps(k)}: {json.dumps(v, sort_keys=True)}" for k, v in snap.items())
    REFERENCE.write_text(f"{{\n{head},\n\"rows\": [\n{rows}\n]}}\n")
    print(f"wrote {REFERENCE} ({rows.count(chr(10)) + 1} rows, {sum(len(m) for m in snap['maps'].values())} maps)",
          file=sys.stderr)
