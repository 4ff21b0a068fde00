"""PNG charts drawn with Pillow from the SVG chart's own primitives: where each mark lands, its colour,
the text, and files that carry nothing but the picture."""

from __future__ import annotations

import io
import zlib

import numpy as np
import pytest
from PIL import Image

from skinscan.raster import PNG_SCALE, _dashes, canvas_png, trend_png
from skinscan.svg import Canvas, trend_canvas
from test_charts import DATES, LABEL_COLOURS, TREATMENTS, make_summary


def _rgb(png: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(png)) as im:
        return np.asarray(im.convert("RGB")).astype(int)


def _hex(c: str) -> np.ndarray:
    return np.array([int(c[i:i + 2], 16) for i in (1, 3, 5)])


@pytest.fixture(scope="module")
def summary():
    return make_summary("s1")


def test_every_point_lands_where_the_svg_puts_it_in_its_label_colour(summary):
    c, _ = trend_canvas(summary, subject="s1", metric="a_star", treatments=TREATMENTS)
    img = _rgb(trend_png(summary, subject="s1", metric="a_star", treatments=TREATMENTS))
    assert img.shape[:2] == (round(c.height * PNG_SCALE), round(c.width * PNG_SCALE))
    points = [(args, kw) for kind, args, kw in c.ops if kind == "circle"]
    assert len(points) == len(DATES)
    labels = summary.query("region == 'face' and metric == 'a_star'").sort_values("session_index")["label"]
    assert set(labels[1:]) == {"improved"}
    for ((x, y, r), kw), label in zip(points, labels):
        if label != "baseline":
            assert kw["fill"] == LABEL_COLOURS[label]
        centre = img[int(round(y * PNG_SCALE)), int(round(x * PNG_SCALE))]
        np.testing.assert_allclose(centre, _hex(kw["fill"]), atol=3)
        outside = img[int(round(y * PNG_SCALE)), int(round((x + r + 3) * PNG_SCALE))]
        assert np.abs(outside - _hex(kw["fill"])).max() > 60  # a disc of radius r, not a blot


def test_a_point_is_as_wide_as_in_the_svg_its_outline_centred_on_the_radius():
    c = Canvas(40, 40)
    c.rect(0, 0, 40, 40, fill="#000000")
    c.circle(20, 20, 8, fill="#ff0000", stroke="#ffffff")  # the white outline spans r 7.5-8.5
    img = _rgb(canvas_png(c, scale=4))
    row = img[80, :, 1]  # green: 0 in red and black, 255 in the white outline
    white = np.flatnonzero(row > 128)
    assert (white.min(), white.max()) == pytest.approx((4 * 11.5, 4 * 28.5), abs=1.5)


def test_a_translucent_band_is_blended_over_white():
    c = Canvas(100, 40)
    c.rect(10, 10, 60, 20, fill="#90a4ae", opacity=0.25)
    img = _rgb(canvas_png(c, scale=2))
    expect = 0.75 * 255 + 0.25 * _hex("#90a4ae")
    np.testing.assert_allclose(img[40, 80], expect, atol=2)
    np.testing.assert_array_equal(img[5, 5], [255, 255, 255])
    # edges at the viewBox coordinates: x 10-70, y 10-30 (times 2)
    cols = np.flatnonzero((img[40] != 255).any(1))
    rows = np.flatnonzero((img[:, 80] != 255).any(1))
    assert (cols.min(), cols.max(), rows.min(), rows.max()) == (20, 139, 20, 59)


def test_dashes_follow_the_pattern_along_a_polyline():
    pieces = _dashes([(0.0, 0.0), (4.0, 0.0), (4.0, 6.0)], [2.0, 3.0])  # 10 long: on 0-2, 5-7; off 2-5, 7-10
    assert [np.round(p, 6).tolist() for p in pieces] == [[[0, 0], [2, 0]], [[4, 1], [4, 3]]]
    c = Canvas(50, 10)
    c.line(0, 5, 50, 5, stroke="#000000", width=2, dash="4 6")
    row = _rgb(canvas_png(c, scale=2))[10, :, 0]
    dark = row < 128
    runs = np.flatnonzero(np.diff(np.r_[0, dark.astype(int), 0]))  # starts and ends of dark runs
    assert len(runs) // 2 == 5 and np.all(np.diff(runs)[::2] == pytest.approx(8, abs=1))


def test_text_is_drawn_where_the_layout_put_it_and_reads_upwards_when_rotated():
    c = Canvas(200, 200)
    c.text(100, 30, "Redness", size=14, anchor="middle", fill="#000000")
    c.text(20, 130, "a* (CIELAB)", size=12, anchor="middle", fill="#000000", rotate=True)
    c.text(120, 190, "ab", size=12, anchor="start", fill="#000000", rotate=True)  # starts at y = 190, goes up
    img = _rgb(canvas_png(c, scale=2))
    ink = img[..., 0] < 128
    ys, xs = np.nonzero(ink[:80])  # the title: centred on x = 100, baseline at y = 30 (px 200, 60)
    assert abs((xs.min() + xs.max()) / 2 - 200) < 4 and 36 < ys.min() and ys.max() <= 66
    ys, xs = np.nonzero(ink[80:, :120])  # the rotated label: left of x = 20 (px 40), centred on y = 130 (px 260)
    ys = ys + 80
    assert xs.max() <= 44 and xs.min() > 10 and abs((ys.min() + ys.max()) / 2 - 260) < 4
    assert ys.max() - ys.min() > 2 * (xs.max() - xs.min())  # taller than wide
    # "ab" reads upwards: the same ink as the text drawn flat and turned a quarter anticlockwise.
    turned = _ink_box(ink[200:, 200:])
    flat = Canvas(200, 60)
    flat.text(10, 40, "ab", size=12, anchor="start", fill="#000000")
    flat_ink = _ink_box(_rgb(canvas_png(flat, scale=2))[..., 0] < 128)
    def overlap(k):
        a = np.rot90(flat_ink, k)
        h, w = min(a.shape[0], turned.shape[0]), min(a.shape[1], turned.shape[1])
        return (a[:h, :w] & turned[:h, :w]).sum() / (a[:h, :w] | turned[:h, :w]).sum()
    assert overlap(1) > 0.8 and overlap(3) < 0.6


def _ink_box(ink):
    ys, xs = np.nonzero(ink)
    return ink[ys.min():ys.max() + 1, xs.min():xs.max() + 1]


def test_a_translucent_polyline_is_blended_once_at_its_joints():
    c = Canvas(60, 30)
    c.polyline([5, 30, 55], [15, 15, 15.0], stroke="#000000", width=4, opacity=0.5)  # a joint at x = 30
    img = _rgb(canvas_png(c, scale=2))[30, :, 0]
    np.testing.assert_allclose(img[20:100], 128, atol=3)  # half black along it and at the joint (px 60)


def test_the_file_is_the_picture_only_and_the_same_bytes_every_time(summary):
    png = trend_png(summary, subject="s1", metric="pore_density", treatments=TREATMENTS)
    assert png == trend_png(summary, subject="s1", metric="pore_density", treatments=TREATMENTS)
    chunks, pos = [], 8
    while pos < len(png):
        n = int.from_bytes(png[pos:pos + 4], "big")
        chunks.append(png[pos + 4:pos + 8].decode())
        assert zlib.crc32(png[pos + 4:pos + 8 + n]) == int.from_bytes(png[pos + 8 + n:pos + 12 + n], "big")
        pos += 12 + n
    assert set(chunks) == {"IHDR", "IDAT", "IEND"}
