"""Privacy: no network, no source metadata in anything exported, and no way out of the output folder.

The photos are sample photos reduced to 480 px wide (about 3 px/mm): these tests need a face, not pores.
"""

from __future__ import annotations

import base64
import io
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

from skinscan.batch import STORE_NAME, run_batch
from skinscan.outputs import MANIFEST, write_outputs
from skinscan.discover import safe_name
from skinscan.store import ResultStore

pytestmark = pytest.mark.slow  # not in `make quick`

SAMPLES = Path(__file__).resolve().parents[1] / "sample_images" / "astronaut"
ARTIST = "Jane Q. Photographer 7d3f"
MAKE = "Acme Optics 41c"
MODEL = "PixelPhone 9 Pro x1"
_GPS_IFD, _MAKE, _MODEL, _ARTIST = 0x8825, 0x010F, 0x0110, 0x013B


def small_copy(src: Path, dst: Path, width: int = 480, *, gps: bool = False) -> Path:
    """``src`` reduced to ``width`` px, keeping its EXIF (capture time); with ``gps`` also a location,
    camera make and model and an artist, as a phone would write them."""
    im = Image.open(src)
    exif = im.getexif()
    if gps:
        exif[_MAKE], exif[_MODEL], exif[_ARTIST] = MAKE, MODEL, ARTIST
        ifd = exif.get_ifd(_GPS_IFD)
        ifd.update({1: "N", 2: (51.0, 30.0, 26.4), 3: "W", 4: (0.0, 7.0, 39.9), 5: 0, 6: 35.0})
    dst.parent.mkdir(parents=True, exist_ok=True)
    im.resize((width, round(im.size[1] * width / im.size[0])), Image.LANCZOS).save(dst, quality=92, exif=exif)
    return dst


# ----------------------------------------------------------------------------------- (a) no network, (b) metadata

_OFFLINE = r"""
import json, socket, sys

attempts = []


def refuse(*args, **kwargs):
    attempts.append(repr(args[:3]))
    raise OSError("network access refused by the test")


socket.socket.connect = socket.socket.connect_ex = refuse
socket.create_connection = socket.getaddrinfo = refuse

import skinscan
from skinscan.batch import run_batch
from skinscan.outputs import MANIFEST, write_outputs

photo, photos, out = sys.argv[1:4]
a = skinscan.analyse_photo(photo)
res = run_batch(photos, out, progress=False)
written = write_outputs(out, paths=photos, formats=("png", "svg", "pdf"), include_flagged=True, progress=False)
print(json.dumps({"attempts": attempts, "px_per_mm": a.scale.px_per_mm, "analysed": res.n_analysed,
                  "failures": res.failures, "charts": len(written["charts"]),
                  "reports": [str(p) for p in written["reports"]]}))
"""


@pytest.fixture(scope="module")
def offline_run(tmp_path_factory):
    """Two sessions of GPS-tagged photos through analyse_photo, run_batch and write_outputs, with every
    socket connection and name lookup refused."""
    root = tmp_path_factory.mktemp("private")
    photos = root / "photos" / "anna"
    sources = [small_copy(next((SAMPLES / s).glob("*.jpg")), photos / s / "phone.jpg", gps=True)
               for s in ("2026-01-05", "2026-02-06")]
    out = root / "out"
    r = subprocess.run([sys.executable, "-c", _OFFLINE, str(sources[0]), str(photos.parent), str(out)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    return {"sources": sources, "out": out, "result": json.loads(r.stdout.splitlines()[-1])}


def test_no_network_at_import_or_run_time(offline_run):
    res = offline_run["result"]
    assert res["attempts"] == []
    assert res["px_per_mm"] == pytest.approx(3.1, rel=0.1)
    assert (res["analysed"], res["failures"]) == (2, [])
    assert res["charts"] > 0 and len(res["reports"]) == 1


def test_the_sources_do_carry_the_metadata(offline_run):
    for src in offline_run["sources"]:
        exif = Image.open(src).getexif()
        assert exif.get_ifd(_GPS_IFD)[2] == (51.0, 30.0, 26.4)
        assert (exif[_MAKE], exif[_MODEL], exif[_ARTIST]) == (MAKE, MODEL, ARTIST)


def _outputs(out: Path) -> list[Path]:
    return sorted(p for p in out.rglob("*") if p.is_file())


def test_exports_carry_no_source_metadata(offline_run):
    out = offline_run["out"]
    files = _outputs(out)
    kinds = {p.suffix for p in files}
    assert {".jpg", ".png", ".svg", ".pdf", ".html", ".csv", ".parquet", ".db"} <= kinds
    assert len(list(out.glob("regions/*.jpg"))) == 2 and len(list(out.glob("canonical/*.jpg"))) == 2
    for path in files:
        data = path.read_bytes()
        for secret in (ARTIST, MAKE, MODEL):
            assert secret.encode() not in data, f"{secret!r} in {path}"
            assert secret.encode("utf-16-le") not in data, f"{secret!r} in {path}"
        if path.suffix in (".jpg", ".png"):
            _assert_no_image_metadata(Image.open(path), str(path))


def _assert_no_image_metadata(im: Image.Image, where: str) -> None:
    assert len(im.getexif()) == 0, where
    assert not {"exif", "xmp", "icc_profile", "XML:com.adobe.xmp"} & set(im.info), (where, sorted(im.info))
    if im.format == "PNG":
        assert not getattr(im, "text", {}), (where, im.text)


def test_the_report_embeds_clean_images_and_loads_nothing(offline_run):
    html = (offline_run["out"] / "report_anna.html").read_text(encoding="utf-8")
    assert not re.search(r"(?i)https?:|//[a-z0-9.-]+\.[a-z]{2,}/|ftp:|file:", html)
    assert not re.search(r"(?i)<(link|iframe|object|embed|base)\b|@import|url\(", html)
    sources = re.findall(r'\bsrc="([^"]*)"', html)
    assert sources and all(s.startswith("data:image/png;base64,") for s in sources)
    for uri in sources:
        im = Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1])))
        _assert_no_image_metadata(im, "an image embedded in the report")


# ----------------------------------------------------------------------------------- (c) names cannot escape

# Folder names a file system accepts (no "/" or NUL), chosen to look like paths, commands or devices.
HOSTILE = {
    "∕etc∕passwd": ["2026-01-05 ..", "2026-02-06 ∕..∕..∕x"],       # U+2215 DIVISION SLASH
    "x" * 200 + "\u202e": ["2026-01-05 " + "y" * 240],               # long, and a right-to-left override
    "C:\\Windows\\System32": ["2026-01-05 \\..\\..\\x"],
    "CON": ["2026-01-05 \n.."],
    "~": ["2026-01-05 ／..／x"],                                     # U+FF0F FULLWIDTH SOLIDUS
}


def test_names_from_folders_never_write_outside_the_output_folder(tmp_path):
    photos, out = tmp_path / "photos", tmp_path / "out"
    src = next((SAMPLES / "2026-01-05").glob("*.jpg"))
    base = small_copy(src, tmp_path / "base.jpg", width=360)
    n = 0
    for subject, sessions in HOSTILE.items():
        for session in sessions:
            (photos / subject / session).mkdir(parents=True)
            n += 1
            Image.open(base).rotate(n, fillcolor=(90, 90, 90)).save(photos / subject / session / f"{n}.jpg")
    dotdot = tmp_path / "dots" / ".inner"  # passed as ".../.inner/..": the folder "dots"
    (dotdot.parent / "2026-01-05").mkdir(parents=True)
    Image.open(base).save(dotdot.parent / "2026-01-05" / "d.jpg")
    dotdot.mkdir()
    before = _tree(tmp_path)

    res = run_batch([photos, dotdot / ".."], out, progress=False)
    assert (res.n_analysed, res.failures) == (n + 1, [])
    with ResultStore(out / STORE_NAME) as store:
        subjects = set(store.photos_frame()["subject"])
        assert "dots" in subjects and set(HOSTILE) <= subjects
        # Names no folder can carry, as a store written by other means might hold them.
        values, photos_frame = store.values_frame(), store.photos_frame()
        row = photos_frame.iloc[0]
        metrics = {}
        for r in values[values["photo"] == row["photo"]].itertuples():
            metrics.setdefault(r.region, {})[r.metric] = r.value
        for i, (subject, session) in enumerate((("../../x", "../../../etc"), ("/tmp/absolute", "/etc/cron.d"),
                                                 ("a/../..", ".."))):
            path = f"{row['photo']}.{i}"  # a file is one row: each name its own (made-up) file
            store.add_photo({"subject": subject, "session": session, "session_index": 0, "date": "2026-01-05",
                             "path": path, "pipeline_version": row["pipeline_version"],
                             "content_hash": row["content_hash"]},
                            record={"photo": path, "excluded_by": "sharpness"}, metrics=metrics,
                            status="analysed")
    written = write_outputs(out, paths=[photos, dotdot / ".."], progress=False)

    assert len(written["reports"]) == len(HOSTILE) + 1 + 3
    root = out.resolve()
    for dirpath, dirnames, filenames in os.walk(out):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            assert not p.is_symlink(), p
            assert p.resolve().is_relative_to(root), p
            assert (not name.startswith(".") or name == MANIFEST) and len(name.encode()) <= 255, p
    for report in written["reports"]:
        assert report.parent == out and report.resolve().is_relative_to(root)
    assert _tree(tmp_path) - {p for p in _tree(tmp_path) if p.is_relative_to(out)} == before
    assert not (tmp_path.parent / "x").exists() and not Path("/tmp/absolute").exists()
    # Every subject got its own files: no two names collapsed onto one slug.
    assert len({p.name for p in written["reports"]}) == len(written["reports"])
    shown = pd.read_csv(out / "photos.csv")["subject"]
    assert "../../x" in set(shown)  # the name itself is data, kept as it is in the tables


def _tree(root: Path) -> set[Path]:
    return {Path(d) / f for d, dirs, files in os.walk(root) for f in dirs + files}


@pytest.mark.parametrize("name", ["../../x", "/etc/passwd", "a/b", "a\\b", "..", ".", "", ".hidden", "a\x00b",
                                  "CON", "con.txt", "x" * 300, "\u202egpj.exe", "2026-01-05\n..", "∕etc∕passwd"])
def test_safe_name_is_one_harmless_path_component(name):
    slug = safe_name(name)
    assert slug and len(slug) <= 80
    assert not set(slug) & set("/\\\x00\n") and not slug.startswith((".", "-")) and ".." not in slug
    assert Path(slug).name == slug and len(Path(slug).parts) == 1
    assert slug.split(".")[0].upper() not in ("CON", "PRN", "AUX", "NUL")


def test_safe_names_of_distinct_names_differ():
    names = ["a/b", "a\\b", "a_b", "a b", "a\u2215b", "A/B", "../a/b", "a/b/"]
    assert len({safe_name(n) for n in names}) == len(names)


# ----------------------------------------------------------------------------------- (c) no network, natively

# One line per call with ``strace -f -o FILE``: "PID  connect(3, {sa_family=AF_INET, ...}, 16) = 0".
# "<... connect resumed>" lines carry no address (their "<unfinished ...>" half did), so they never match.
_CALL = re.compile(r"^(?:\[pid\s+)?(?P<pid>\d+)\]?\s+(?P<call>connect|sendto|sendmsg|sendmmsg)\((?P<args>.*)$")
_INET = re.compile(r"\bsa_family=AF_INET6?\b")
_PORT53 = re.compile(r"\bsin6?_port=htons\(53\)")
#: Local daemons that look a host name up on a process's behalf.
_RESOLVERS = ("/var/run/nscd/socket", "/run/nscd/socket", "/run/systemd/resolve/")


def network_calls(strace_log: str) -> list[str]:
    """The system calls of an strace log that reach the network: a connect or send to an IPv4 or
    IPv6 address, anything to port 53, or a connect to a local resolver daemon. Local (Unix,
    netlink) traffic is allowed."""
    bad = []
    for line in strace_log.splitlines():
        m = _CALL.match(line.strip())
        if not m:
            continue
        args = m["args"]
        if _INET.search(args) or _PORT53.search(args) or ("AF_UNIX" in args and any(p in args for p in _RESOLVERS)):
            bad.append(line.strip())
    return bad


def test_the_strace_reader_finds_each_kind_of_network_call():
    log = """\
5445  connect(6, {sa_family=AF_UNIX, sun_path="/dev/null/skinscan-offline"}, 29) = -1 ENOTDIR (Not a directory)
5445  connect(6, {sa_family=AF_UNIX, sun_path="/var/run/nscd/socket"}, 110) = -1 ENOENT (No such file or directory)
5445  connect(6, {sa_family=AF_INET, sin_port=htons(53), sin_addr=inet_addr("10.255.255.53")}, 16 <unfinished ...>
5445  <... connect resumed>) = 0
5445  sendmmsg(6, [{msg_hdr={msg_name=NULL, msg_namelen=0, msg_iov=[{iov_base="m@\\1", iov_len=37}]}}], 2, 0) = 2
[pid  77] sendto(4, "x", 1, 0, {sa_family=AF_INET6, sin6_port=htons(443), sin6_flowinfo=htonl(0), inet_pton(AF_INET6, "::1", &sin6_addr), sin6_scope_id=0}, 28) = 1
5445  sendto(9, {nlmsg_len=20, nlmsg_type=RTM_GETADDR}, 20, 0, {sa_family=AF_NETLINK, nl_pid=0, nl_groups=00000000}, 12) = 20
"""
    bad = network_calls(log)
    assert len(bad) == 3 and "nscd" in bad[0] and "htons(53)" in bad[1] and "AF_INET6" in bad[2]


_NATIVE = r"""
import sys
import skinscan
from skinscan.batch import run_batch
photo, photos, out = sys.argv[1:4]
skinscan.analyse_photo(photo)                          # this process: create, detect, close at exit
res = run_batch(photos, out, jobs=2, progress=False)   # forked pool workers, one landmarker each
assert res.n_analysed == 2, res.failures
"""


@pytest.fixture(scope="module")
def strace():
    exe = shutil.which("strace")
    if exe is None:
        if os.environ.get("CI"):
            pytest.fail("strace is not installed: .ci/run installs it, the no-network promise rests on this test")
        pytest.skip("strace is not installed (apt-get install strace)")
    r = subprocess.run([exe, "-f", "-qq", "-o", "/dev/null", "-e", "trace=connect", "true"], capture_output=True)
    if r.returncode != 0:
        pytest.fail(f"strace cannot trace here: {r.stderr.decode(errors='replace').strip()}")
    return exe


def test_no_network_system_call_from_native_code(strace, tmp_path):
    """MediaPipe's native library carries a usage logger that posts to Google from a thread of its own
    (a DNS lookup when a landmarker closes, and about every minute while it detects): under strace,
    no process of an analysis, nor of a batch's workers, connects to an IP address or sends to port 53.
    Linux only (strace); the README says so."""
    photos = tmp_path / "photos" / "anna"
    copies = [small_copy(next((SAMPLES / s).glob("*.jpg")), photos / s / "phone.jpg") for s in ("2026-01-05", "2026-02-06")]
    log = tmp_path / "strace.log"
    env = {**os.environ, "https_proxy": "http://proxy.example:3128", "no_proxy": "*"}  # a user's own settings
    r = subprocess.run([strace, "-f", "-qq", "-e", "signal=none", "-e", "trace=connect,sendto,sendmsg,sendmmsg",
                        "-o", str(log), sys.executable, "-c", _NATIVE, str(copies[0]), str(photos), str(tmp_path / "out")],
                       capture_output=True, text=True, timeout=600, env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    trace = log.read_text(errors="replace")
    assert "/dev/null/skinscan-offline" in trace  # the logger did try, and was stopped on this machine
    bad = network_calls(trace)
    assert not bad, "network system calls:\n" + "\n".join(b[:200] for b in bad)


_PROXY_BACK = r"""
import os
from skinscan.landmarks import OFFLINE_PROXY, FaceLandmarker

first, second = FaceLandmarker(), FaceLandmarker()
assert os.environ["https_proxy"] == OFFLINE_PROXY and "no_proxy" not in os.environ
first.close()
assert os.environ["https_proxy"] == OFFLINE_PROXY  # the second is still open
second.close()
print(os.environ["https_proxy"], os.environ["no_proxy"])
"""


def test_the_users_proxy_settings_come_back_when_the_last_landmarker_closes():
    env = {**os.environ, "https_proxy": "http://proxy.example:3128", "no_proxy": "localhost"}
    r = subprocess.run([sys.executable, "-c", _PROXY_BACK], capture_output=True, text=True, timeout=120, env=env)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.split() == ["http://proxy.example:3128", "localhost"]
