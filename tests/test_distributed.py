"""The batch on a real Dask cluster: the same results as one local process, work done on the workers,
a worker that dies, an interrupt, and the command's ``--executor dask`` and ``--scheduler``.

Photos are ``sample_images/astronaut`` at 15 % of the size (about 1.8 px/mm, fast) plus a grey
image with no face; the cluster is a ``LocalCluster`` of two single-threaded worker processes.
"""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from distributed import Client, LocalCluster, get_task_stream
from PIL import Image

from skinscan.analysis import analyse_photo
from skinscan.batch import STORE_NAME, run_batch
from skinscan.distributed import LOST_WORKER, DaskExecutor
from skinscan.errors import SkinscanError
from skinscan.store import ResultStore

pytestmark = pytest.mark.slow  # not in `make quick`

SAMPLES = Path(__file__).resolve().parents[1] / "sample_images" / "astronaut"
SESSIONS = ("2026-01-05", "2026-02-06")
NO_FACE = "no face found in the photo; use a photo with the whole face in the frame, facing the camera, in even light"
# MediaPipe's log lines on stderr; anything else there is skinscan's.
MEDIAPIPE_NOISE = ("W0000", "I0000", "WARNING: Logging before InitGoogle()", "INFO: Created TensorFlow Lite")


def make_photos(dst: Path, *, sessions=SESSIONS, no_face: bool = True) -> list[Path]:
    """The sample photos of ``sessions`` at 15 % of the size (EXIF kept), and a grey image with no face."""
    written = []
    for src in sorted(SAMPLES.glob("*/*.jpg")):
        if src.parent.name in sessions:
            im = Image.open(src)
            target = dst / src.parent.name / src.name
            target.parent.mkdir(parents=True, exist_ok=True)
            im.resize((round(im.size[0] * 0.15), round(im.size[1] * 0.15)), Image.LANCZOS).save(
                target, quality=95, exif=im.info["exif"])
            written.append(target)
    if no_face:
        target = dst / sessions[0] / "grey.jpg"
        Image.fromarray(np.full((300, 400, 3), 128, np.uint8)).save(target, quality=95)
        written.append(target)
    return written


def cli(*args, **kw):
    return subprocess.run([sys.executable, "-m", "skinscan.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=300, **kw)


def own_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.strip() and not line.startswith(MEDIAPIPE_NOISE)]


def frames(out: Path) -> dict[str, pd.DataFrame]:
    """The store's photos (without the time of analysis), values and quality checks, in a fixed order."""
    with ResultStore(out / STORE_NAME) as store:
        photos = store.photos_frame().drop(columns="analysed_at")
        values = store.values_frame()
        quality = store.quality_frame()
    return {"photos": photos.sort_values("photo").reset_index(drop=True),
            "values": values.sort_values(["photo", "region", "metric"]).reset_index(drop=True),
            "quality": quality.sort_values(list(quality.columns[:2])).reset_index(drop=True)}


def stored(out: Path) -> dict[str, tuple[str, str | None, str]]:
    """File name -> (status, error, content hash) of every stored photo, read-only."""
    with closing(sqlite3.connect(f"file:{out / STORE_NAME}?mode=ro", uri=True)) as db:
        rows = db.execute("SELECT path, status, error, content_hash FROM photos").fetchall()
    return {Path(p).name: (status, error, h) for p, status, error, h in rows}


def skinscan_plugins(client: Client) -> dict[str, list[str]]:
    return client.run(lambda dask_worker: [n for n in dask_worker.plugins if n.startswith("skinscan")])


@pytest.fixture(scope="module")
def cluster():
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as c:
        yield c


@pytest.fixture(scope="module")
def client(cluster):
    with Client(cluster, set_as_default=False) as c:
        yield c


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    root = tmp_path_factory.mktemp("photos") / "astronaut"
    assert len(make_photos(root)) == 5
    return root


@pytest.fixture(scope="module")
def both(photos, client, tmp_path_factory):
    """The photos analysed by one local process and by the cluster, and the cluster's task stream."""
    root = tmp_path_factory.mktemp("both")
    local = run_batch(photos, root / "local", jobs=1, progress=False)
    with get_task_stream(client) as stream:
        dask = run_batch(photos, root / "dask", scheduler=client, progress=False)
    return {"local": local, "dask": dask, "out": {"local": root / "local", "dask": root / "dask"},
            "tasks": [t for t in stream.data if "_analyse_task" in str(t["key"])]}


def test_dask_stores_the_same_results_as_one_local_process(both):
    local, dask = both["local"], both["dask"]
    assert (dask.n_photos, dask.n_analysed, dask.n_cached) == (local.n_photos, local.n_analysed, 0) == (5, 4, 0)
    a, b = frames(both["out"]["local"]), frames(both["out"]["dask"])
    assert len(a["values"]) > 100 and a["values"]["value"].notna().any() and a["values"]["value"].isna().any()
    for name in ("photos", "values", "quality"):  # exact: NaN equals NaN, every other value bit for bit
        pd.testing.assert_frame_equal(a[name], b[name], check_exact=True)
    np.testing.assert_allclose(a["values"]["value"].to_numpy(float), b["values"]["value"].to_numpy(float),
                               rtol=0, atol=0)
    assert stored(both["out"]["local"]) == stored(both["out"]["dask"])


def test_a_photo_that_cannot_be_analysed_is_skipped_with_its_reason(both, photos):
    assert both["dask"].failures == both["local"].failures == [(str(photos / SESSIONS[0] / "grey.jpg"), NO_FACE)]
    status, error, content_hash = stored(both["out"]["dask"])["grey.jpg"]
    assert (status, error) == ("skipped", NO_FACE) and not content_hash.startswith("retry:")


def test_the_photos_were_analysed_in_the_worker_processes(both, client):
    tasks = both["tasks"]
    assert len(tasks) == 5 and {t["status"] for t in tasks} == {"OK"}  # every photo, the grey one too
    pids = client.run(os.getpid)
    assert len(pids) == 2 and os.getpid() not in pids.values()
    assert {t["worker"] for t in tasks} <= set(pids)
    # The batch's plugin (one landmarker per worker) is gone from every worker once the batch is over.
    assert skinscan_plugins(client) == {w: [] for w in pids}


def test_overlays_are_written_by_the_client_identical_to_local_ones(both):
    """The region overlays, the canonical faces and their maps (what a report's before/after reads)."""
    for kind, pattern in (("regions", "*.jpg"), ("canonical", "*.jpg"), ("canonical", "*.npz")):
        local = sorted((both["out"]["local"] / kind).glob(pattern))
        assert len(local) == 4
        assert [p.name for p in sorted((both["out"]["dask"] / kind).glob(pattern))] == [p.name for p in local]
        for path in local:
            assert (both["out"]["dask"] / kind / path.name).read_bytes() == path.read_bytes()


def test_rerun_on_the_cluster_analyses_nothing(both, photos, client):
    with get_task_stream(client) as stream:
        res = run_batch(photos, both["out"]["dask"], scheduler=client, progress=False)
    # The grey photo's "no face" is final, so it counts as already stored too.
    assert (res.n_analysed, res.n_cached, res.failures) == (0, 5, [])
    assert not [t for t in stream.data if "_analyse_task" in str(t["key"])]


def test_an_interrupt_cancels_the_photos_handed_out_and_ends_the_batch_on_the_workers(photos, client, cluster,
                                                                                       tmp_path):
    calls = []

    class Interrupted(DaskExecutor):  # Ctrl-C as the first photo comes back
        def next_outcome(self):
            calls.append(super().next_outcome())
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_batch(photos, tmp_path / "out", executor=Interrupted(client), progress=False)
    assert len(calls) == 1
    assert skinscan_plugins(client) == {w: [] for w in client.run(os.getpid)}
    assert client.status == "running"  # the caller's client stays open
    # Nothing of the batch is left on the scheduler: the photos handed out were cancelled and released.
    deadline = time.monotonic() + 10
    while [k for k in cluster.scheduler.tasks if "_analyse_task" in str(k)]:
        assert time.monotonic() < deadline, list(cluster.scheduler.tasks)
        time.sleep(0.05)


def test_a_worker_that_cannot_set_up_stops_the_batch_in_one_line(photos, client, tmp_path):
    # As a worker with another skinscan installed would: it refuses the batch, which stops before any photo.
    class OtherVersion(DaskExecutor):
        def plugin(self, work, references):
            plugin = super().plugin(work, references)
            plugin.pipeline_version = "0.0-other"
            return plugin

    with pytest.raises(SkinscanError, match=r"^a Dask worker could not start skinscan: this Dask worker runs skinscan "
                                            r"pipeline \S+, the batch 0.0-other; install the same skinscan on every "
                                            r"worker$"):
        run_batch(photos, tmp_path / "out", executor=OtherVersion(client), progress=False)
    assert skinscan_plugins(client) == {w: [] for w in client.run(os.getpid)}
    assert stored(tmp_path / "out") == {}


class CrashOn:
    """What analyses a photo on the workers: dies, as a crash in native code would, on the photo named
    ``victim`` (in a worker, never in the client, which finds the references)."""

    def __init__(self, victim: str):
        self.victim, self.client_pid = victim, os.getpid()

    def __call__(self, source, **kw):
        if Path(source).name == self.victim and os.getpid() != self.client_pid:
            os._exit(3)
        return analyse_photo(source, **kw)


@pytest.mark.filterwarnings("ignore:Port 8787 is already in use")  # the module's cluster has it
def test_a_worker_that_dies_costs_its_photos_not_the_batch(photos, tmp_path):
    # Its own cluster: the victim kills a worker every time it is tried (Dask's default is three
    # retries), and the nanny restarts each one with the plugins registered.
    victim = sorted(photos.glob("2026-02-06/*.jpg"))[0].name
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster, set_as_default=False) as client:
        crashing = DaskExecutor(client, analyse=CrashOn(victim))
        res = run_batch(photos, tmp_path / "out", executor=crashing, progress=False)
        assert len(client.run(os.getpid)) == 2  # restarted
    failed = {Path(p).name: reason for p, reason in res.failures}
    assert failed.pop("grey.jpg") == NO_FACE
    assert victim in failed and res.n_analysed + len(failed) == 4
    assert set(failed.values()) == {LOST_WORKER}
    rows = stored(tmp_path / "out")
    assert all(rows[name][0] == "skipped" and rows[name][2].startswith("retry:") for name in failed)
    again = run_batch(photos, tmp_path / "out", jobs=1, progress=False)  # retried by the next run
    assert (again.n_analysed, again.n_cached) == (len(failed), 5 - len(failed))


# ------------------------------------------------------------------------------------------- the command

@pytest.fixture(scope="module")
def two_photos(tmp_path_factory):
    root = tmp_path_factory.mktemp("two") / "astronaut"
    assert len(make_photos(root, sessions=SESSIONS[:1], no_face=False)) == 2
    return root


def test_cli_executor_dask_starts_a_local_cluster(two_photos, tmp_path):
    out = tmp_path / "out"
    r = cli("--quiet", "analyse", two_photos, "--out", out, "--executor", "dask", "--jobs", 2, "--no-report")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("skinscan: 2 of 2 photos analysed (0 already in the store")
    assert "Traceback" not in r.stderr
    assert [s for s, _, _ in stored(out).values()] == ["analysed", "analysed"]
    assert len(list((out / "regions").glob("*.jpg"))) == len(list((out / "canonical").glob("*.jpg"))) == 2


def test_cli_scheduler_address_runs_on_that_cluster(two_photos, cluster, client, tmp_path):
    out = tmp_path / "out"
    with get_task_stream(client) as stream:
        r = cli("--quiet", "analyse", two_photos, "--out", out, "--scheduler", cluster.scheduler_address,
                "--no-report")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("skinscan: 2 of 2 photos analysed")
    assert len([t for t in stream.data if "_analyse_task" in str(t["key"])]) == 2
    assert [s for s, _, _ in stored(out).values()] == ["analysed", "analysed"]


def test_ctrl_c_stops_the_local_cluster_quietly(tmp_path):
    # Ctrl-C in a terminal signals the whole process group: the workers too, which must leave it to skinscan.
    photos = tmp_path / "photos"
    sessions = sorted({p.parent.name for p in SAMPLES.glob("*/*.jpg")})
    assert len(make_photos(photos, sessions=sessions, no_face=False)) == 12
    out = tmp_path / "out"
    # As a terminal's shell starts a command: with Ctrl-C at its default. A test run started in the
    # background of a non-interactive shell (`cmd &`) ignores SIGINT, and an ignored signal stays
    # ignored across exec, so the batch would never see the Ctrl-C; a handler is reset at exec.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        p = subprocess.Popen([sys.executable, "-m", "skinscan.cli", "--quiet", "analyse", photos, "--out", out,
                              "--executor", "dask", "--jobs", "2", "--no-report"], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, start_new_session=True)
    finally:
        signal.signal(signal.SIGINT, previous)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if (out / STORE_NAME).exists() and stored(out):
                    break
            except sqlite3.Error:  # the store's tables are not there yet
                pass
            assert p.poll() is None, p.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.005)
        os.killpg(p.pid, signal.SIGINT)
        _, stderr = p.communicate(timeout=120)
    finally:
        p.kill()
        p.communicate()
    assert p.returncode == 130, stderr
    rows = stored(out)
    assert 0 < len(rows) < 12 and {s for s, _, _ in rows.values()} == {"analysed"}
    assert own_lines(stderr) == [f"skinscan: interrupted (SIGINT); {len(rows)} photos analysed and stored by this run "
                                 f"are kept ({len(rows)} in the store for the photos found); run the same command "
                                 "again to continue where it stopped"]


def test_an_unreachable_scheduler_is_one_clear_line(two_photos, tmp_path):
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        address = f"tcp://127.0.0.1:{s.getsockname()[1]}"
    r = cli("analyse", two_photos, "--out", tmp_path / "out", "--scheduler", address, "--no-report")
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    lines = own_lines(r.stderr)
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith(f"skinscan: error: cannot reach the Dask scheduler at {address} within 10 s")


def test_without_dask_the_executor_says_which_extra_to_install(two_photos, tmp_path):
    code = ("import sys; sys.modules['distributed'] = None; from skinscan.cli import main; "
            f"sys.exit(main(['analyse', {str(two_photos)!r}, '--out', {str(tmp_path / 'out')!r}, "
            "'--executor', 'dask']))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2
    assert own_lines(r.stderr) == ["skinscan: the Dask executor needs the distributed extra: "
                                   "pip install 'skinscan[distributed]'"]
    assert not (tmp_path / "out").exists()  # said before any work
