"""Tests of skinscan.io: every fixture is built here with Pillow/numpy, and results are checked as numbers."""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import struct
import tempfile
import zlib
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageCms

from skinscan.errors import ImageLoadError, SkinscanError
from skinscan.io import (SUPPORTED_SUFFIXES, Photo, is_photo_file, load_photo, read_capture_time, save_jpeg,
                         save_png)

H, W, SQ = 40, 60, 16  # test pattern: H x W grey image, SQ x SQ red square in its top-left corner


def _pattern() -> np.ndarray:
    a = np.full((H, W, 3), 128, np.uint8)
    a[:SQ, :SQ] = (255, 0, 0)
    return a


def _red_centroid(rgb: np.ndarray) -> tuple[float, float]:
    r, g, b = (rgb[..., k].astype(int) for k in range(3))
    rows, cols = np.nonzero((r > 200) & (g < 80) & (b < 80))
    return rows.mean(), cols.mean()


def _noise(shape=(24, 32, 3), seed=0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def _exif(orientation=None, original=None, offset=None, datetime_=None, gps=False) -> Image.Exif:
    ex = Image.Exif()
    if orientation is not None:
        ex[0x0112] = orientation
    if datetime_ is not None:
        ex[0x0132] = datetime_
    if original is not None:
        ex.get_ifd(0x8769)[0x9003] = original
    if offset is not None:
        ex.get_ifd(0x8769)[0x9011] = offset
    if gps:
        ex.get_ifd(0x8825).update({1: "N", 2: (48.0, 51.0, 24.0), 3: "E", 4: (2.0, 21.0, 3.0)})
    return ex


def _heif_encoder_available() -> bool:
    import pillow_heif

    return bool(pillow_heif.libheif_info().get("HEIF"))


# --- orientation -----------------------------------------------------------------------------------------

# Red-square centroid (row, col) and shape after the viewer's rotation (EXIF 2.32, tag 0x0112):
# 3 = rotate 180, 6 = rotate 90 clockwise (red goes top-right), 8 = 90 counter-clockwise (bottom-left).
C = (SQ - 1) / 2
ORIENTED = {
    1: ((H, W), (C, C)),
    2: ((H, W), (C, W - 1 - C)),
    3: ((H, W), (H - 1 - C, W - 1 - C)),
    6: ((W, H), (C, H - 1 - C)),
    8: ((W, H), (W - 1 - C, C)),
}


@pytest.mark.parametrize("orientation", sorted(ORIENTED))
def test_jpeg_exif_orientation_is_applied(tmp_path, orientation):
    p = tmp_path / f"o{orientation}.jpg"
    Image.fromarray(_pattern()).save(p, quality=95, exif=_exif(orientation))
    photo = load_photo(p)
    shape, centroid = ORIENTED[orientation]
    assert photo.shape == shape and photo.rgb.shape == (*shape, 3)
    np.testing.assert_allclose(_red_centroid(photo.rgb), centroid, atol=0.6)
    assert photo.orientation == orientation
    assert photo.rgb.flags.c_contiguous and photo.rgb.dtype == np.uint8


def test_invalid_orientation_tag_is_ignored(tmp_path):
    p = tmp_path / "o9.jpg"
    Image.fromarray(_pattern()).save(p, quality=95, exif=_exif(9))
    photo = load_photo(p)
    assert photo.orientation == 1 and photo.shape == (H, W)


@pytest.mark.skipif(not _heif_encoder_available(), reason="this pillow-heif build has no HEVC encoder")
def test_heic_orientation_applied_once(tmp_path):
    p = tmp_path / "o6.heic"
    Image.fromarray(_pattern()).save(p, format="HEIF", quality=-1, chroma=444, matrix_coefficients=0,
                                     exif=_exif(6).tobytes())
    photo = load_photo(p)
    # Rotated twice would give (H, W) with red bottom-left; once gives (W, H) with red top-right.
    assert photo.shape == (W, H)
    np.testing.assert_allclose(_red_centroid(photo.rgb), (C, H - 1 - C), atol=0.6)
    assert photo.orientation == 6 and photo.format == "HEIF"


# --- formats and modes -----------------------------------------------------------------------------------

@pytest.mark.parametrize("fmt, suffix, options", [
    ("TIFF", ".tif", {}),
    ("WEBP", ".webp", {"lossless": True}),
    ("BMP", ".bmp", {}),
    ("PNG", ".png", {}),
])
def test_lossless_formats_round_trip_exactly(tmp_path, fmt, suffix, options):
    a = _noise()
    p = tmp_path / f"x{suffix}"
    Image.fromarray(a).save(p, format=fmt, **options)
    photo = load_photo(p)
    np.testing.assert_array_equal(photo.rgb, a)
    assert (photo.format, photo.source_mode, photo.n_frames, photo.orientation) == (fmt, "RGB", 1, 1)
    assert photo.content_hash == hashlib.sha256(p.read_bytes()).hexdigest()
    assert photo.path == p and photo.capture_time is None and not photo.exif_has_gps and not photo.icc_converted


@pytest.mark.skipif(not _heif_encoder_available(), reason="this pillow-heif build has no HEVC encoder")
def test_heic_round_trip(tmp_path):
    a = _noise()
    p = tmp_path / "x.heic"
    # Lossless HEVC: 4:4:4 chroma and identity matrix, so the pixels come back exactly.
    Image.fromarray(a).save(p, format="HEIF", quality=-1, chroma=444, matrix_coefficients=0,
                            exif=_exif(original="2024:03:05 14:15:16").tobytes())
    photo = load_photo(p)
    np.testing.assert_array_equal(photo.rgb, a)
    assert photo.format == "HEIF" and photo.capture_time == datetime(2024, 3, 5, 14, 15, 16)


@pytest.mark.skipif(not _heif_encoder_available(), reason="this pillow-heif build has no HEVC encoder")
def test_heic_lossy_round_trip_close(tmp_path):
    a = np.repeat(np.repeat(_noise((6, 8, 3)), 8, axis=0), 8, axis=1)  # flat 8x8 blocks survive lossy coding
    p = tmp_path / "x.heif"
    Image.fromarray(a).save(p, format="HEIF", quality=95)
    err = np.abs(load_photo(p).rgb.astype(int) - a)
    assert np.median(err) <= 4


def test_sixteen_bit_grey_png_is_scaled_not_clipped(tmp_path):
    v = np.arange(0, 65536, 64, dtype=np.uint16).reshape(32, 32)
    v[-1, -1] = 65535
    p = tmp_path / "g16.png"
    Image.fromarray(v).save(p)
    photo = load_photo(p)
    assert photo.source_mode.startswith("I")
    expected = np.round(v / 257.0)
    np.testing.assert_allclose(photo.rgb[..., 0], expected, atol=1)
    assert photo.rgb[..., 0].max() == 255 and photo.rgb[16, 0, 0] in (127, 128)  # v = 32768
    assert (photo.rgb[..., 0] == photo.rgb[..., 1]).all() and (photo.rgb[..., 1] == photo.rgb[..., 2]).all()


def test_float_tiff_taken_as_zero_to_one(tmp_path):
    f = np.array([[0.0, 0.25, 0.5, 1.0, 1.5, -0.2]], np.float32)
    p = tmp_path / "f.tif"
    Image.fromarray(f, mode="F").save(p)
    np.testing.assert_array_equal(load_photo(p).rgb[0, :, 1], [0, 64, 128, 255, 255, 0])


def test_rgba_drops_alpha_without_compositing(tmp_path):
    a = np.zeros((4, 4, 4), np.uint8)
    a[..., :3] = (10, 200, 30)
    a[:, :2, 3] = 0    # fully transparent: compositing on white would give (255, 255, 255)
    a[:, 2:, 3] = 255
    p = tmp_path / "rgba.png"
    Image.fromarray(a, mode="RGBA").save(p)
    photo = load_photo(p)
    assert photo.source_mode == "RGBA"
    np.testing.assert_array_equal(photo.rgb, np.broadcast_to([10, 200, 30], (4, 4, 3)))


def test_grey_alpha_png(tmp_path):
    p = tmp_path / "la.png"
    Image.fromarray(np.dstack([np.full((3, 3), 77, np.uint8), np.zeros((3, 3), np.uint8)]), mode="LA").save(p)
    np.testing.assert_array_equal(load_photo(p).rgb, np.full((3, 3, 3), 77))


def test_palette_png(tmp_path):
    palette = [(255, 0, 0), (0, 128, 255), (17, 34, 51)]
    idx = np.array([[0, 1, 2], [2, 1, 0]], np.uint8)
    im = Image.fromarray(idx, mode="P")
    im.putpalette([c for rgb in palette for c in rgb])
    p = tmp_path / "p.png"
    im.save(p)
    photo = load_photo(p)
    assert photo.source_mode == "P"
    np.testing.assert_array_equal(photo.rgb, np.array(palette, np.uint8)[idx])


def test_bilevel_png(tmp_path):
    p = tmp_path / "bw.png"
    Image.fromarray(np.array([[0, 1], [1, 0]], bool)).save(p)
    np.testing.assert_array_equal(load_photo(p).rgb[..., 2], [[0, 255], [255, 0]])


def test_grey_jpeg_gives_three_equal_channels(tmp_path):
    g = np.tile(np.linspace(0, 255, 64).astype(np.uint8), (16, 1))
    p = tmp_path / "g.jpg"
    Image.fromarray(g, mode="L").save(p, quality=95)
    photo = load_photo(p)
    assert photo.source_mode == "L" and photo.rgb.shape == (16, 64, 3)
    assert (photo.rgb[..., 0] == photo.rgb[..., 1]).all() and (photo.rgb[..., 0] == photo.rgb[..., 2]).all()
    np.testing.assert_allclose(photo.rgb[..., 0], g, atol=4)


def test_cmyk_jpeg_colours(tmp_path):
    # 16 x 16 patches of CMYK ink, and the RGB each should give (Pillow's ink formula, no profile).
    inks = {(0, 255, 255, 0): (255, 0, 0), (255, 0, 255, 0): (0, 255, 0), (0, 0, 0, 0): (255, 255, 255),
            (0, 0, 0, 255): (0, 0, 0), (0, 0, 0, 128): (127, 127, 127)}
    cmyk = np.concatenate([np.broadcast_to(np.array(k, np.uint8), (16, 16, 4)) for k in inks], axis=1)
    p = tmp_path / "cmyk.jpg"
    Image.fromarray(np.ascontiguousarray(cmyk), mode="CMYK").save(p, quality=95)
    photo = load_photo(p)
    assert photo.source_mode == "CMYK" and photo.shape == (16, 16 * len(inks))
    centres = photo.rgb[8, 8::16].astype(int)
    np.testing.assert_allclose(centres, list(inks.values()), atol=10)


def _swapped_primaries_profile() -> bytes:
    """Pillow's sRGB profile with the red and green colorants exchanged (and renamed, so it is not sRGB).

    A pixel (r, g, b) tagged with it is the sRGB colour (g, r, b): an exact, hand-checkable conversion.
    """
    icc = bytearray(ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes())
    (n,) = struct.unpack(">I", icc[128:132])
    table = {bytes(icc[132 + 12 * k:136 + 12 * k]): 132 + 12 * k for k in range(n)}
    r, g = table[b"rXYZ"], table[b"gXYZ"]
    icc[r + 4:r + 8], icc[g + 4:g + 8] = icc[g + 4:g + 8], icc[r + 4:r + 8]
    return bytes(icc.replace("sRGB".encode("utf-16-be"), "swap".encode("utf-16-be")))


def test_non_srgb_icc_profile_is_converted(tmp_path):
    a = np.array([[[200, 100, 50], [255, 0, 0], [0, 0, 255], [128, 128, 128]]], np.uint8)
    p = tmp_path / "swapped.png"
    Image.fromarray(a).save(p, icc_profile=_swapped_primaries_profile())
    photo = load_photo(p)
    assert photo.icc_converted
    np.testing.assert_allclose(photo.rgb, a[..., [1, 0, 2]], atol=1)


def test_srgb_icc_profile_is_left_alone(tmp_path):
    a = _noise()
    p = tmp_path / "srgb.png"
    Image.fromarray(a).save(p, icc_profile=ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes())
    photo = load_photo(p)
    assert not photo.icc_converted
    np.testing.assert_array_equal(photo.rgb, a)


def test_broken_icc_profile_is_ignored(tmp_path):
    a = _noise()
    p = tmp_path / "badicc.png"
    Image.fromarray(a).save(p, icc_profile=b"not a profile at all" * 8)
    photo = load_photo(p)
    assert not photo.icc_converted
    np.testing.assert_array_equal(photo.rgb, a)


def test_lab_tiff_is_converted_to_srgb(tmp_path):
    # Pillow's LAB mode: L* scaled to 0-255, a* and b* as signed bytes.
    lab = np.array([[[255, 0, 0], [128, 0, 0], [0, 0, 0]]], np.uint8)
    p = tmp_path / "lab.tif"
    Image.fromarray(lab, mode="LAB").save(p)
    photo = load_photo(p)
    # Neutral L* = 50.2 -> Y = ((L* + 16) / 116) ** 3 -> sRGB encoding (IEC 61966-2-1).
    y = ((128 / 255 * 100 + 16) / 116) ** 3
    grey = 255 * (1.055 * y ** (1 / 2.4) - 0.055)
    np.testing.assert_allclose(photo.rgb[0], [[255] * 3, [grey] * 3, [0] * 3], atol=2)
    assert photo.icc_converted and photo.source_mode == "LAB"


def test_animated_gif_first_frame(tmp_path):
    frames = [Image.new("RGB", (8, 6), c) for c in [(255, 0, 0), (0, 255, 0), (0, 0, 255)]]
    p = tmp_path / "a.gif"
    frames[0].save(p, save_all=True, append_images=frames[1:], duration=100, loop=0)
    photo = load_photo(p)
    assert photo.n_frames == 3 and photo.format == "GIF"
    np.testing.assert_array_equal(photo.rgb, np.broadcast_to([255, 0, 0], (6, 8, 3)))


def test_multipage_tiff_first_page(tmp_path):
    pages = [Image.fromarray(_noise(seed=k)) for k in range(3)]
    p = tmp_path / "m.tiff"
    pages[0].save(p, save_all=True, append_images=pages[1:])
    photo = load_photo(p)
    assert photo.n_frames == 3
    np.testing.assert_array_equal(photo.rgb, _noise(seed=0))


def test_one_pixel_image_loads(tmp_path):
    p = tmp_path / "dot.png"
    Image.new("RGB", (1, 1), (1, 2, 3)).save(p)
    photo = load_photo(p)
    assert photo.shape == (1, 1) and photo.rgb.tolist() == [[[1, 2, 3]]]


# --- metadata --------------------------------------------------------------------------------------------

def test_capture_time_with_offset(tmp_path):
    p = tmp_path / "t.jpg"
    Image.fromarray(_noise()).save(p, exif=_exif(original="2024:03:05 14:15:16", offset="+02:00",
                                                 datetime_="2030:01:01 00:00:00"))
    expected = datetime(2024, 3, 5, 14, 15, 16, tzinfo=timezone(timedelta(hours=2)))
    assert load_photo(p).capture_time == expected
    assert read_capture_time(p) == expected
    assert read_capture_time(p).utcoffset() == timedelta(hours=2)


@pytest.mark.parametrize("exif, expected", [
    (_exif(original="2024:03:05 14:15:16"), datetime(2024, 3, 5, 14, 15, 16)),
    (_exif(original="2024:03:05 14:15:16", offset="-05:30"),
     datetime(2024, 3, 5, 14, 15, 16, tzinfo=timezone(-timedelta(hours=5, minutes=30)))),
    (_exif(datetime_="2023:12:31 23:59:58"), datetime(2023, 12, 31, 23, 59, 58)),   # fallback to DateTime
    (_exif(original="0000:00:00 00:00:00"), None),                                  # clock never set
    (_exif(original="    :  :     :  :  ", datetime_="2022:02:02 02:02:02"), datetime(2022, 2, 2, 2, 2, 2)),
    (Image.Exif(), None),
])
def test_capture_time_variants(tmp_path, exif, expected):
    p = tmp_path / "t.png"
    Image.fromarray(_noise()).save(p, exif=exif.tobytes())  # bytes: Pillow skips an Exif whose IFD0 is empty
    assert read_capture_time(p) == expected
    assert load_photo(p).capture_time == expected


def test_gps_is_reported(tmp_path):
    with_gps, without = tmp_path / "gps.jpg", tmp_path / "nogps.jpg"
    Image.fromarray(_noise()).save(with_gps, exif=_exif(original="2024:01:01 10:00:00", gps=True))
    Image.fromarray(_noise()).save(without, exif=_exif(original="2024:01:01 10:00:00"))
    assert load_photo(with_gps).exif_has_gps
    assert not load_photo(without).exif_has_gps


# --- failures --------------------------------------------------------------------------------------------

def _jpeg_bytes() -> bytes:
    buf = io.BytesIO()
    Image.fromarray(_noise((64, 64, 3))).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def _png_bytes(a=None) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(_noise() if a is None else a).save(buf, format="PNG")
    return buf.getvalue()


def _png_declaring(width: int, height: int) -> bytes:
    """A real small PNG whose IHDR is patched to declare width x height, with a valid CRC."""
    d = bytearray(_png_bytes())
    d[16:24] = struct.pack(">II", width, height)
    d[29:33] = struct.pack(">I", zlib.crc32(bytes(d[12:29])))
    return bytes(d)


def _png_bad_ihdr_crc() -> bytes:
    d = bytearray(_png_bytes())
    d[29] ^= 0xFF
    return bytes(d)


def _png_corrupt_idat() -> bytes:
    d = bytearray(_png_bytes(_noise((64, 64, 3))))
    i = d.find(b"IDAT")
    (n,) = struct.unpack(">I", d[i - 4:i])
    d[i + 4 + n // 2:i + 4 + n // 2 + 8] = bytes(8)
    return bytes(d)


def _ppm_bytes() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (4, 4)).save(buf, format="PPM")
    return buf.getvalue()


BAD_FILES = {
    "empty": ("empty.jpg", lambda: b"", "empty"),
    "truncated jpeg": ("half.jpg", lambda: _jpeg_bytes()[: len(_jpeg_bytes()) // 2], "truncated"),
    "text": ("notes.jpg", lambda: b"these are my notes, not a photo\n", "not an image file (starts with b'these"),
    "pdf": ("doc.jpg", lambda: b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n", "not an image file"),
    "mp4": ("clip.heic", lambda: b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + bytes(64), "not an image"),
    "png bad header crc": ("crc.png", _png_bad_ihdr_crc, "damaged PNG file"),
    "png corrupt data": ("idat.png", _png_corrupt_idat, "damaged"),
    "bomb": ("bomb.png", lambda: _png_declaring(100_000, 100_000), "over the limit"),
    "unsupported format": ("x.ppm", _ppm_bytes, "PPM images are not supported"),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_bad_files_raise_image_load_error(tmp_path, case):
    name, make, words = BAD_FILES[case]
    p = tmp_path / name
    p.write_bytes(make())
    with pytest.raises(ImageLoadError) as info:
        load_photo(p)
    assert str(p) in str(info.value) and info.value.path == p
    assert words in info.value.reason
    assert isinstance(info.value, SkinscanError)
    with pytest.raises(ImageLoadError):
        read_capture_time(p) if case not in ("truncated jpeg", "png corrupt data") else load_photo(p)


def test_pixel_limit_names_the_size(tmp_path):
    p = tmp_path / "big.png"
    Image.fromarray(_pattern()).save(p)
    with pytest.raises(ImageLoadError, match=rf"declares {W}x{H} pixels, over the limit of 2,000"):
        load_photo(p, max_pixels=2000)
    assert load_photo(p, max_pixels=W * H).shape == (H, W)


def test_declared_size_checked_before_decoding(tmp_path):
    p = tmp_path / "declared.png"
    p.write_bytes(_png_declaring(20_000, 5_000))  # 100 M pixels declared, only a few hundred bytes of data
    with pytest.raises(ImageLoadError, match=r"declares 20000x5000 pixels, over the limit of 99,999,999"):
        load_photo(p, max_pixels=99_999_999)


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(ImageLoadError, match="file not found") as info:
        load_photo(tmp_path / "nope.jpg")
    assert "nope.jpg" in str(info.value)
    with pytest.raises(ImageLoadError, match="folder") as info:
        load_photo(tmp_path)
    assert str(tmp_path) in str(info.value)


@contextlib.contextmanager
def _unprivileged():
    """Drop the effective uid to 'nobody' when running as root, where chmod 000 would not stop a read.

    Root loses its file-permission override (CAP_DAC_OVERRIDE) with a non-zero effective uid and, the
    real uid staying 0, can take it back afterwards.
    """
    if os.geteuid() != 0:
        yield
        return
    os.seteuid(65534)
    try:
        yield
    finally:
        os.seteuid(0)


@pytest.mark.skipif(not hasattr(os, "geteuid"), reason="POSIX permissions only")
def test_unreadable_file():
    with tempfile.TemporaryDirectory() as d:  # not tmp_path: its parents are closed to other users
        folder = Path(d)
        folder.chmod(0o755)
        p = folder / "locked.jpg"
        p.write_bytes(_jpeg_bytes())
        p.chmod(0)
        try:
            with _unprivileged():
                with pytest.raises(ImageLoadError, match="permission denied") as info:
                    load_photo(p)
        finally:
            p.chmod(0o644)
        assert str(p) in str(info.value)


# --- saving and discovery --------------------------------------------------------------------------------

def test_saved_images_carry_no_metadata(tmp_path):
    src = tmp_path / "src.jpg"
    Image.fromarray(_noise()).save(src, exif=_exif(6, original="2024:01:01 10:00:00", gps=True),
                                   icc_profile=_swapped_primaries_profile())
    photo = load_photo(src)
    assert photo.exif_has_gps and photo.capture_time is not None
    jpg, png = tmp_path / "out.jpg", tmp_path / "out.png"
    save_jpeg(jpg, photo.rgb)
    save_png(png, photo.rgb)
    for p in (jpg, png):
        with Image.open(p) as im:
            assert len(im.getexif()) == 0
            assert not {"icc_profile", "exif", "xmp", "XML:com.adobe.xmp"} & set(im.info)
    np.testing.assert_array_equal(load_photo(png).rgb, photo.rgb)
    assert np.abs(load_photo(jpg).rgb.astype(int) - photo.rgb).mean() < 12  # noise is JPEG's worst case
    assert read_capture_time(jpg) is None


def test_save_grey_and_quality(tmp_path):
    g = np.tile(np.arange(0, 256, 4, dtype=np.uint8), (8, 1))
    save_png(tmp_path / "g.png", g)
    np.testing.assert_array_equal(load_photo(tmp_path / "g.png").rgb[..., 1], g)
    save_jpeg(tmp_path / "lo.jpg", _noise(), quality=10)
    save_jpeg(tmp_path / "hi.jpg", _noise(), quality=95)
    assert (tmp_path / "lo.jpg").stat().st_size < (tmp_path / "hi.jpg").stat().st_size


@pytest.mark.parametrize("bad", [np.zeros((4, 4, 3), np.float32), np.zeros((4, 4, 4), np.uint8),
                                 np.zeros(5, np.uint8)])
def test_save_rejects_bad_arrays(tmp_path, bad):
    with pytest.raises(ValueError, match="uint8 array"):
        save_png(tmp_path / "x.png", bad)


def test_save_bad_quality_and_unwritable_path(tmp_path):
    with pytest.raises(ValueError, match="quality"):
        save_jpeg(tmp_path / "x.jpg", _noise(), quality=0)
    with pytest.raises(SkinscanError, match="cannot write") as info:
        save_jpeg(tmp_path / "no" / "such" / "x.jpg", _noise())
    assert "x.jpg" in str(info.value)


def test_is_photo_file():
    assert SUPPORTED_SUFFIXES == {".jpg", ".jpeg", ".png", ".tif", ".tiff", ".webp", ".bmp", ".heic", ".heif",
                                  ".gif"}
    assert all(s == s.lower() for s in SUPPORTED_SUFFIXES)
    assert is_photo_file("a/IMG_0001.JPG") and is_photo_file(Path("x.HEIC")) and is_photo_file("s.tiff")
    assert not is_photo_file("notes.txt") and not is_photo_file("clip.mov") and not is_photo_file("jpg")


def test_photo_is_frozen(tmp_path):
    p = tmp_path / "x.png"
    Image.fromarray(_noise()).save(p)
    photo = load_photo(p)
    assert isinstance(photo, Photo)
    with pytest.raises(AttributeError):
        photo.orientation = 3


# --- damaged data that a decoder would fill in silently ------------------------------------------------------

PHONE_JPEG = Path(__file__).resolve().parents[1] / "sample_images" / "astronaut" / "2026-01-05" / "IMG_20260105_100412.jpg"


def _cut(data: bytes, fraction: float) -> bytes:
    """A JPEG cut short with its end marker appended: libjpeg decodes it with grey rows and only warns."""
    return data[:int(len(data) * fraction)] + b"\xff\xd9"


def _zeroed(data: bytes) -> bytes:
    """64 KB of the entropy-coded data overwritten with zeros (a bad sector, a broken copy)."""
    i = len(data) // 3
    return data[:i] + bytes(65536) + data[i + 65536:]


@pytest.mark.parametrize("make", [lambda d: _cut(d, 0.60), lambda d: _cut(d, 0.75), lambda d: _cut(d, 0.92), _zeroed],
                         ids=["cut at 60%", "cut at 75%", "cut at 92%", "64 KB zeroed"])
def test_damaged_jpeg_data_are_refused_with_the_files_name(tmp_path, make):
    p = tmp_path / "damaged.jpg"
    p.write_bytes(make(PHONE_JPEG.read_bytes()))
    with pytest.raises(ImageLoadError) as info:
        load_photo(p)
    assert info.value.path == p and "truncated or damaged" in info.value.reason


def test_damage_is_found_in_jpegs_pillow_decodes_too(tmp_path):
    """CMYK and grey JPEGs go through Pillow (conversions), and are checked all the same."""
    rgb = np.asarray(Image.open(PHONE_JPEG).convert("RGB").resize((400, 500)))
    for mode in ("CMYK", "L"):
        buf = io.BytesIO()
        Image.fromarray(rgb).convert(mode).save(buf, format="JPEG", quality=90)
        intact = tmp_path / f"{mode}.jpg"
        intact.write_bytes(buf.getvalue())
        assert load_photo(intact).shape == (500, 400)
        cut = tmp_path / f"{mode}_cut.jpg"
        cut.write_bytes(_cut(buf.getvalue(), 0.7))
        with pytest.raises(ImageLoadError, match="truncated or damaged"):
            load_photo(cut)


def test_extraneous_bytes_before_a_marker_refuse_nothing(tmp_path):
    """libjpeg's warning common in intact phone JPEGs: stray bytes between segments, or before the end marker."""
    data = PHONE_JPEG.read_bytes()
    want = load_photo(PHONE_JPEG).rgb
    i = data.find(b"\xff\xdb")  # the first quantisation table, after the EXIF segment
    for name, variant in (("header.jpg", data[:i] + b"\x00\x11\x22" + data[i:]),
                          ("end.jpg", data[:-2] + b"\x00\x00\x13" + data[-2:])):
        p = tmp_path / name
        p.write_bytes(variant)
        assert np.array_equal(load_photo(p).rgb, want), name


def test_damage_is_found_per_file_under_threads(tmp_path):
    """Each call reports its own file's damage: intact and damaged files decoded side by side."""
    from concurrent.futures import ThreadPoolExecutor

    data = PHONE_JPEG.read_bytes()
    files = []
    for k in range(8):
        p = tmp_path / f"{k}.jpg"
        p.write_bytes(_cut(data, 0.8) if k % 2 else data)
        files.append(p)

    def outcome(p):
        try:
            load_photo(p)
            return "ok"
        except ImageLoadError as e:
            return "refused" if e.path == p else "wrong file"

    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(outcome, files))
    assert got == ["ok", "refused"] * 4


def _encoded(fmt: str, **options) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(_noise((300, 240, 3), seed=3)).save(buf, format=fmt, **options)
    return buf.getvalue()


@pytest.mark.parametrize("fmt,suffix,options", [("PNG", ".png", {}), ("TIFF", ".tif", {}),
                                                ("TIFF", ".tif", {"compression": "tiff_deflate"}),
                                                ("WEBP", ".webp", {"quality": 90}), ("HEIF", ".heic", {"quality": 90})])
@pytest.mark.parametrize("fraction", [0.5, 0.97])
def test_truncated_png_tiff_webp_heic_are_refused(tmp_path, fmt, suffix, options, fraction):
    if fmt == "HEIF":
        if not _heif_encoder_available():
            pytest.skip("libheif has no HEIF encoder here")
        import pillow_heif

        pillow_heif.register_heif_opener()
    data = _encoded(fmt, **options)
    p = tmp_path / f"cut{suffix}"
    p.write_bytes(data[:int(len(data) * fraction)])
    with pytest.raises(ImageLoadError) as info:
        load_photo(p)
    assert info.value.path == p and ("damaged" in info.value.reason or "truncated" in info.value.reason)
