"""The report's SVG charts as PNG files, drawn with Pillow from the same :class:`~skinscan.svg.Canvas`.

A chart file in PNG drawn by matplotlib cost about a tenth of a second of one core, most of it laying
out text; one subject's trend charts then took most of its report's time. Drawn here from the
primitives the SVG chart is made of (lines, rectangles, polylines, circles, text), a PNG costs a
few hundredths, and the file shows exactly the chart the report shows. The drawing is made at twice
the output size and reduced by averaging, which smooths the edges of lines and circles (Pillow draws
them without anti-aliasing); text is anti-aliased by FreeType. The font is DejaVu Sans, which
matplotlib ships, laid out by FreeType alone (no text-shaping library, which another install may
or may not have), so that the same chart gives the same pixels wherever matplotlib's own font is.
"""

from __future__ import annotations

import functools
import io
import math
from pathlib import Path

from PIL import Image, ImageColor, ImageDraw, ImageFont

from .svg import Canvas, trend_canvas

__all__ = ["canvas_png", "trend_png", "PNG_SCALE"]

#: Output pixels per viewBox unit: a 340 x 230 trend chart becomes 850 x 575 px, about what a
#: 5.2 x 3.6 in figure at 150 dpi gave.
PNG_SCALE = 2.5
_SUPERSAMPLE = 2
_ANCHORS = {"start": "ls", "middle": "ms", "end": "rs"}


@functools.lru_cache(maxsize=None)
def _font(px: int, bold: bool) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    import matplotlib  # only for where its fonts are: no pyplot, no backend

    name = "DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf"
    candidates = [Path(matplotlib.get_data_path()) / "fonts" / "ttf" / name]
    try:  # a matplotlib packaged without its fonts finds DejaVu Sans where the system keeps it
        from matplotlib.font_manager import FontProperties, findfont

        candidates.append(Path(findfont(FontProperties(family="DejaVu Sans", weight="bold" if bold else "normal"),
                                        fallback_to_default=True)))
    except (ImportError, ValueError, RuntimeError):
        pass
    for path in candidates:
        try:
            return ImageFont.truetype(str(path), px, layout_engine=ImageFont.Layout.BASIC)
        except OSError:
            continue
    return ImageFont.load_default(px)  # Pillow's own: a chart with other letter shapes, never none


def _colour(c: str, opacity) -> tuple:
    rgb = ImageColor.getrgb(c)[:3]
    return rgb + (int(round(255 * (1.0 if opacity is None else float(opacity)))),)


def _dashes(points: list[tuple[float, float]], pattern: list[float]) -> list[list[tuple[float, float]]]:
    """The drawn pieces of a dashed polyline: ``pattern`` alternates drawn and skipped lengths."""
    pieces, cur, k, left, on = [], [points[0]], 0, pattern[0], True
    for (x0, y0), (x1, y1) in zip(points, points[1:]):
        seg = math.hypot(x1 - x0, y1 - y0)
        t = 0.0
        while seg - t > left:
            t += left
            p = (x0 + (x1 - x0) * t / seg, y0 + (y1 - y0) * t / seg)
            if on:
                cur.append(p)
                pieces.append(cur)
            cur = [p]
            k = (k + 1) % len(pattern)
            left, on = pattern[k], not on
        left -= seg - t
        cur.append((x1, y1))
    if on and len(cur) > 1:
        pieces.append(cur)
    return pieces


def _stroke(img: Image.Image, draw: ImageDraw.ImageDraw, points, s: float, *, stroke, width, dash, opacity) -> None:
    pts = [(x * s, y * s) for x, y in points]
    w = max(int(round(width * s)), 1)
    pattern = [float(v) * s for v in dash.replace(",", " ").split()] if dash else None
    pieces = _dashes(pts, pattern) if pattern and sum(pattern) > 0 else [pts]
    translucent = opacity is not None and float(opacity) < 1.0
    # A translucent line is drawn whole into a mask and blended once: drawn piece by piece, its
    # joints and round ends would be blended twice and show as dark beads.
    mask = Image.new("L", img.size, 0) if translucent else None
    pen = ImageDraw.Draw(mask) if translucent else draw
    ink = 255 if translucent else _colour(stroke, None)
    for piece in pieces:
        pen.line(piece, fill=ink, width=w, joint="curve" if len(piece) > 2 else None)
    if translucent:
        alpha = mask.point(lambda v: int(round(v * float(opacity))))
        img.paste(Image.new("RGB", img.size, ImageColor.getrgb(stroke)[:3]), (0, 0), alpha)


def _text(img: Image.Image, draw: ImageDraw.ImageDraw, x, y, text, s: float, *, size, anchor, fill, bold, rotate):
    font = _font(max(int(round(size * s)), 1), bold)
    if not rotate:
        draw.text((x * s, y * s), text, font=font, fill=fill, anchor=_ANCHORS.get(anchor, "ls"))
        return
    # SVG's rotate(-90 x y): the text reads upwards with its baseline on x, its ascent to the left.
    ascent, descent = font.getmetrics()
    tw = max(int(math.ceil(font.getlength(text))), 1)
    strip = Image.new("L", (tw, ascent + descent), 0)
    ImageDraw.Draw(strip).text((0, ascent), text, font=font, fill=255, anchor="ls")
    strip = strip.transpose(Image.Transpose.ROTATE_90)  # (ascent + descent) wide, tw tall; its start at the bottom
    along = {"start": tw, "middle": tw / 2, "end": 0}.get(anchor, tw)
    img.paste(Image.new("RGB", strip.size, ImageColor.getrgb(fill)[:3]),
              (int(round(x * s - ascent)), int(round(y * s - along))), strip)


def canvas_png(canvas: Canvas, *, scale: float = PNG_SCALE) -> bytes:
    """The chart on ``canvas`` as PNG bytes, ``scale`` pixels per viewBox unit, on white.

    Parameters
    ----------
    canvas : Canvas
        A chart drawn by :mod:`skinscan.svg`.
    scale : float
        Output pixels per viewBox unit.

    Returns
    -------
    bytes
        A PNG (8-bit RGB) with no metadata: the same chart gives the same bytes (with the same
        Pillow and zlib).

    Examples
    --------
    >>> c = Canvas(40, 20)
    >>> c.rect(0, 0, 20, 20, fill="#ff0000")
    >>> img = Image.open(io.BytesIO(canvas_png(c, scale=1)))
    >>> img.size, img.getpixel((5, 5)), img.getpixel((35, 5))
    ((40, 20), (255, 0, 0), (255, 255, 255))
    """
    s = scale * _SUPERSAMPLE
    size = (max(int(math.ceil(canvas.width * scale)), 1), max(int(math.ceil(canvas.height * scale)), 1))
    img = Image.new("RGB", (size[0] * _SUPERSAMPLE, size[1] * _SUPERSAMPLE), "white")
    draw = ImageDraw.Draw(img, "RGBA")  # fills with alpha blend over what is drawn
    for kind, args, kw in canvas.ops:
        if kind == "line":
            x1, y1, x2, y2 = args
            _stroke(img, draw, [(x1, y1), (x2, y2)], s, **kw)
        elif kind == "polyline":
            if len(args[0]) > 1:
                _stroke(img, draw, list(zip(*args)), s, **kw)
        elif kind == "rect":
            x, y, w, h = args
            if w > 0 and h > 0:
                draw.rectangle([x * s, y * s, (x + w) * s - 1, (y + h) * s - 1], fill=_colour(kw["fill"], kw["opacity"]))
        elif kind == "circle":
            x, y, r = args
            r += 0.5 if kw["stroke"] else 0.0  # SVG centres the 1-unit outline on r; Pillow draws it inside the box
            draw.ellipse([(x - r) * s, (y - r) * s, (x + r) * s, (y + r) * s], fill=_colour(kw["fill"], None),
                         outline=_colour(kw["stroke"], None) if kw["stroke"] else None, width=max(int(round(s)), 1))
        elif kind == "text":
            _text(img, draw, *args, s, **kw)
    out = io.BytesIO()
    img.reduce(_SUPERSAMPLE).save(out, format="png", compress_level=3)
    return out.getvalue()


def trend_png(summary, *, subject, metric: str, region: str = "face", treatments=(), scale: float = PNG_SCALE) -> bytes:
    """:func:`skinscan.svg.trend_svg`'s chart as PNG bytes (see :func:`canvas_png`)."""
    c, _ = trend_canvas(summary, subject=subject, metric=metric, region=region, treatments=treatments)
    return canvas_png(c, scale=scale)
