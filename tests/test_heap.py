"""A worker keeps its freed memory for the next photo: page faults counted, not times.

Each case runs in a fresh interpreter (the heap's settings are the process's), with transparent
huge pages off for it (NumPy's hint and the kernel's, whatever the machine's setting), so that a
64 MB array is 16,384 pages of 4 kB when it is faulted in.
"""

import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

pytestmark = pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc",
                                reason="the heap is tuned on glibc only")

_SCRIPT = r"""
import ctypes, json, resource, sys
ctypes.CDLL(None).prctl(41, 1, 0, 0, 0)  # PR_SET_THP_DISABLE: 4 kB pages, as counted below
import numpy as np
from skinscan._heap import freed_memory_kept, keep_freed_memory

def faults(mb, n=3):
    # Page faults of allocating, writing and freeing an array of mb MB, n times.
    out = []
    for _ in range(n):
        f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        a = np.ones(mb * 2**20 // 8)
        del a
        out.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0)
    return out

mode = sys.argv[1]
if mode == "default":
    print(json.dumps({"faults": faults(64)}))
elif mode == "kept":
    print(json.dumps({"ok": keep_freed_memory(), "faults": faults(64)}))
elif mode == "nested":
    with freed_memory_kept() as ok:
        with freed_memory_kept():
            pass
        inner_closed = faults(64)  # the outer block still holds
    print(json.dumps({"ok": ok, "faults": inner_closed}))
else:
    with freed_memory_kept() as ok:
        inside = faults(64)
    print(json.dumps({"ok": ok, "faults": inside, "after": faults(64), "after_2mb": faults(2, 4)}))
"""

PAGES = 64 * 2**20 // 4096


def _run(mode, *, script=_SCRIPT, args=(), env=None, timeout=120):
    env = {**os.environ, "NUMPY_MADVISE_HUGEPAGE": "0", **(env or {})}
    r = subprocess.run([sys.executable, "-c", script, mode, *map(str, args)], capture_output=True, text=True, env=env,
                       timeout=timeout)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_by_default_every_large_array_faults_its_pages_in_again():
    faults = _run("default")["faults"]
    assert all(f >= 0.95 * PAGES for f in faults), faults


def test_a_worker_reuses_its_freed_pages():
    res = _run("kept")
    assert res["ok"] is True
    first, *again = res["faults"]
    assert first >= 0.95 * PAGES  # the first array's pages are new
    assert all(f < 0.02 * PAGES for f in again), res["faults"]  # then the same pages again


def test_the_with_block_gives_the_memory_back_and_leaves_a_settled_heap():
    res = _run("with")
    assert res["ok"] is True
    assert all(f < 0.02 * PAGES for f in res["faults"][1:]), res
    # After the block the heap's free memory went back to the system, arrays over 32 MB are mapped
    # afresh again, and arrays under it are reused from the heap, as in a process whose dynamic
    # threshold has settled (left at glibc's 128 kB, every 2 MB array faulted 480-512 pages).
    assert all(f >= 0.95 * PAGES for f in res["after"]), res
    assert all(f < 50 for f in res["after_2mb"][1:]), res


def test_an_inner_block_does_not_end_an_outer_one():
    res = _run("nested")
    assert res["ok"] is True
    assert all(f < 0.02 * PAGES for f in res["faults"][1:]), res


_BATCH_SCRIPT = _SCRIPT[:_SCRIPT.index("mode = sys.argv[1]")] + r"""
from skinscan.batch import run_batch

before = faults(2, 4)
res = run_batch(sys.argv[2], sys.argv[3], jobs=1, progress=False)
print(json.dumps({"analysed": res.n_analysed, "before": before, "after": faults(2, 4), "after_64": faults(64)}))
"""


@pytest.mark.slow
def test_a_batch_run_from_python_leaves_the_callers_heap_as_it_was(tmp_path):
    """run_batch(jobs=1) in a notebook's interpreter: the heap is not tuned around it (only processes
    skinscan owns are: pool workers, the command). The caller's own setting here, 2 MB arrays mapped
    afresh (a 1 MB mmap threshold), holds after the batch; a tuned heap would have served them from
    itself (a 32 MB threshold) or kept every array (no mmap)."""
    src = sorted((Path(__file__).resolve().parents[1] / "sample_images" / "astronaut" / "2026-01-05").glob("*.jpg"))[0]
    im = Image.open(src)
    photo = tmp_path / "photos" / "anna" / "2026-01-05" / src.name
    photo.parent.mkdir(parents=True)
    im.resize((round(im.size[0] * 0.15), round(im.size[1] * 0.15)), Image.LANCZOS).save(photo, exif=im.info["exif"])
    res = _run("batch", script=_BATCH_SCRIPT, args=(tmp_path / "photos", tmp_path / "out"),
               env={"MALLOC_MMAP_THRESHOLD_": str(2**20)}, timeout=300)
    assert res["analysed"] == 1
    pages_2mb = 2 * 2**20 // 4096
    assert all(f >= 0.9 * pages_2mb for f in res["before"]), res
    assert all(f >= 0.9 * pages_2mb for f in res["after"]), res
    assert all(f >= 0.95 * PAGES for f in res["after_64"]), res
