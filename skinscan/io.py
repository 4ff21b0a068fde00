"""Reading photo files into upright sRGB uint8 arrays, with the metadata later stages need.

Everything that can go wrong while reading a file becomes an :class:`~skinscan.errors.ImageLoadError`
naming the file and the reason; no Pillow, libheif or OS exception leaves :func:`load_photo`.
"""

from __future__ import annotations

import functools
import hashlib
import io
import os
import re
import warnings
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageCms, ImageOps

from ._write import atomic_write
from .errors import ImageLoadError

__all__ = ["Photo", "load_photo", "read_capture_time", "SUPPORTED_SUFFIXES", "is_photo_file",
           "save_jpeg", "save_png"]

SUPPORTED_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".tif", ".tiff", ".webp", ".bmp", ".heic", ".heif",
                                ".gif"})
# MPO is how Pillow names the multi-picture JPEGs many phones write.
_SUPPORTED_FORMATS = frozenset({"JPEG", "MPO", "PNG", "TIFF", "WEBP", "BMP", "HEIF", "GIF"})
_ORIENTATION, _DATETIME, _EXIF_IFD, _GPS_IFD = 0x0112, 0x0132, 0x8769, 0x8825
_DATETIME_ORIGINAL, _OFFSET_TIME, _OFFSET_TIME_ORIGINAL = 0x9003, 0x9010, 0x9011
_HEIF_BRANDS = (b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"hevm", b"hevs", b"mif1", b"msf1")
# ISO base media brands of videos (MP4, MOV, 3GP, M4V), to name a video saved or renamed as a photo.
_VIDEO_BRANDS = (b"isom", b"iso2", b"iso4", b"iso5", b"iso6", b"mp41", b"mp42", b"avc1", b"qt  ", b"M4V ", b"M4VH",
                 b"3gp4", b"3gp5", b"3gp6", b"3g2a", b"dash", b"MSNV")
_RECOPY = "copy the file again from the phone or camera (the copy may be incomplete)"
_NOT_A_PHOTO = "only photos (JPEG, PNG, TIFF, WebP, BMP, HEIC, GIF) are analysed; move it out of the photo folder"
_MAGIC = {b"\x89PNG": "PNG", b"\xff\xd8\xff": "JPEG", b"II*\x00": "TIFF", b"MM\x00*": "TIFF", b"GIF8": "GIF"}


@dataclass(frozen=True, eq=False)  # eq=False: comparing pixel arrays with == is ambiguous; identity is meant
class Photo:
    """A decoded photo: upright sRGB pixels plus what the file said about them.

    Attributes
    ----------
    rgb : ndarray, shape (H, W, 3), uint8
        Pixels in sRGB, EXIF orientation applied, alpha dropped, C-contiguous.
    path : Path or None
        The file read, or None for an array given directly.
    capture_time : datetime or None
        EXIF DateTimeOriginal (else DateTime); timezone-aware when the file records the offset.
    orientation : int
        EXIF orientation (1-8) that was applied to make the image upright; 1 when none.
    source_mode : str
        Pillow mode of the file's pixels before conversion (``"RGB"``, ``"I;16"``, ``"CMYK"``...).
    format : str
        Pillow format name (``"JPEG"``, ``"PNG"``, ``"HEIF"``...).
    icc_converted : bool
        True when an embedded non-sRGB colour profile was converted to sRGB.
    n_frames : int
        Frames or pages in the file; only the first is used.
    exif_has_gps : bool
        True when the EXIF carries a GPS block (the file reveals a location).
    content_hash : str
        SHA-256 hex digest of the file's bytes, a cache key that ignores the file's name.
    """

    rgb: np.ndarray
    path: Path | None
    capture_time: datetime | None
    orientation: int
    source_mode: str
    format: str
    icc_converted: bool
    n_frames: int
    exif_has_gps: bool
    content_hash: str

    @property
    def shape(self) -> tuple[int, int]:
        """(height, width) of the upright image in pixels."""
        return self.rgb.shape[0], self.rgb.shape[1]


def is_photo_file(path: str | os.PathLike) -> bool:
    """True when the file's suffix (any case) is one of :data:`SUPPORTED_SUFFIXES`; the file is not opened.

    Parameters
    ----------
    path : str or PathLike
        A file name or path.

    Returns
    -------
    bool

    Examples
    --------
    >>> is_photo_file("IMG_0001.HEIC"), is_photo_file("notes.txt")
    (True, False)
    """
    return Path(path).suffix.lower() in SUPPORTED_SUFFIXES


def load_photo(path: str | os.PathLike, *, max_pixels: int = 100_000_000) -> Photo:
    """Read a photo file into an upright sRGB uint8 array.

    Parameters
    ----------
    path : str or PathLike
        A JPEG, PNG, TIFF, WebP, BMP, HEIC/HEIF or GIF file. Of animated or multi-page files
        the first frame is used.
    max_pixels : int, optional
        Refuse images declaring more pixels than this (decompression-bomb guard), before decoding.

    Returns
    -------
    Photo
        ``rgb`` has shape (H, W, 3), dtype uint8, in sRGB, after the EXIF orientation.

    Raises
    ------
    ImageLoadError
        Missing, unreadable, empty, not an image, unsupported format, truncated, damaged or too large.

    Notes
    -----
    Conversions, chosen so every photo of a series lands on the same scale:

    ==================  ==========================================================
    source              to 8-bit RGB
    ==================  ==========================================================
    alpha (RGBA, LA..)  alpha channel dropped, not composited: the colour under it is kept
    I;16, I (16 bit)    top byte kept (``v >> 8``), not clipped; 3 equal channels
    F (float)           taken as 0-1, scaled by 255
    L, 1, P, YCbCr      Pillow's conversion; grey gives 3 equal channels
    CMYK                embedded profile if any, else Pillow's formula (Adobe inversion handled)
    LAB                 littleCMS Lab (D50) to sRGB
    ICC profile         non-sRGB profiles converted to sRGB, relative colorimetric intent
    ==================  ==========================================================

    libheif rotates HEIC while decoding, so its orientation is not applied twice; ``orientation``
    still reports the file's value. A broken embedded profile is ignored, as viewers do. Truncated
    files are errors unless a caller has set Pillow's global ``ImageFile.LOAD_TRUNCATED_IMAGES``.

    Examples
    --------
    >>> photo = load_photo("sample_images/astronaut/2026-01-05/IMG_20260105_100412.jpg")
    >>> photo.shape, photo.rgb.dtype
    ((2380, 1870), dtype('uint8'))
    """
    path = Path(path)
    data = _read_bytes(path)
    im = _open(data, path, max_pixels=max_pixels)
    fmt, source_mode, n_frames = im.format, im.mode, int(getattr(im, "n_frames", 1))
    fast = _decode_jpeg_fast(im, data, path)
    if fast is not None:
        rgb, orientation, exif, capture_time, has_gps = fast
        return Photo(rgb=rgb, path=path, capture_time=capture_time, orientation=orientation, source_mode=source_mode,
                     format=fmt, icc_converted=False, n_frames=n_frames, exif_has_gps=has_gps,
                     content_hash=hashlib.sha256(data).hexdigest())
    if fmt in ("JPEG", "MPO"):
        _check_jpeg_data(data, path)
    try:
        im.load()
    except MemoryError:
        raise ImageLoadError("not enough memory to decode the image; close other programs or resize the photo",
                             path) from None
    except Exception as e:  # Pillow's decoders raise OSError, SyntaxError, ValueError... for bad data
        raise ImageLoadError(f"image data is truncated or damaged ({e}); {_RECOPY}", path) from e
    exif, capture_time, has_gps = _metadata(im)
    icc = im.info.get("icc_profile")
    if fmt == "HEIF":  # already upright: libheif applied the rotation, pillow-heif reset the tag to 1
        orientation, upright = int(im.info.get("original_orientation") or 1), True
    else:
        tag = exif.get(_ORIENTATION, 1)
        orientation = tag if isinstance(tag, int) and 1 <= tag <= 8 else 1
        upright = orientation == 1
    try:
        if not upright:
            im = ImageOps.exif_transpose(im)
        rgb, icc_converted = _to_rgb(im, icc)
    except Exception as e:  # e.g. an exotic mode Pillow cannot convert
        raise ImageLoadError(f"cannot convert the {source_mode} image to RGB ({e}); re-export it as an 8-bit RGB "
                             "JPEG", path) from e
    return Photo(rgb=np.ascontiguousarray(rgb, dtype=np.uint8), path=path, capture_time=capture_time,
                 orientation=orientation, source_mode=source_mode, format=fmt, icc_converted=icc_converted,
                 n_frames=n_frames, exif_has_gps=has_gps, content_hash=hashlib.sha256(data).hexdigest())


#: cv2.rotate codes that undo EXIF orientations (mirrored ones also need a flip; see _decode_jpeg_fast).
_ROTATE = {3: 1, 6: 0, 8: 2}  # ROTATE_180, ROTATE_90_CLOCKWISE, ROTATE_90_COUNTERCLOCKWISE


def _decode_jpeg_fast(im: Image.Image, data: bytes, path: Path):
    """Decode a plain sRGB JPEG straight to RGB with libjpeg-turbo, or None to use Pillow.

    Most phone photos are 8-bit YCbCr JPEGs with no profile or an sRGB one, and the decode is the
    floor of a photo's cost: libjpeg-turbo writes RGB in one pass where Pillow's decode, conversion
    and array copy take about twice as long. Both use libjpeg's default (islow) IDCT and fancy
    chroma upsampling, so the pixels are the same. Everything unusual (CMYK, grey, a non-sRGB
    profile, a file without its end marker) goes through Pillow, which raises the errors
    :func:`load_photo` documents.

    Raises :class:`~skinscan.errors.ImageLoadError` when the decoder reports damaged data
    (see :func:`_decode_jpeg_strict`).
    """
    if im.format != "JPEG" or im.mode != "RGB" or not data.rstrip(b"\x00").endswith(b"\xff\xd9"):
        return None
    icc = im.info.get("icc_profile")
    if icc and _source_profile(icc, "RGB") is not None:
        return None
    exif, capture_time, has_gps = _metadata(im)
    tag = exif.get(_ORIENTATION, 1)
    orientation = tag if isinstance(tag, int) and 1 <= tag <= 8 else 1
    rgb = _decode_jpeg_strict(data, path, colorspace="RGB")
    if rgb is None or rgb.shape[:2] != (im.size[1], im.size[0]):
        return None
    if orientation in (2, 4, 5, 7):  # mirrored: flip first, then rotate as the unmirrored twin
        rgb = cv2.flip(rgb, 1)
        orientation_rot = {2: 1, 4: 3, 5: 8, 7: 6}[orientation]
    else:
        orientation_rot = orientation
    if orientation_rot in _ROTATE:
        rgb = cv2.rotate(rgb, _ROTATE[orientation_rot])
    return np.ascontiguousarray(rgb), orientation, exif, capture_time, has_gps


#: libjpeg's warnings about the entropy-coded data: the decoder filled what it could not read
#: with grey (a file cut short, with or without an end marker appended) or with garbage.
_DAMAGED_JPEG = ("premature end", "corrupt jpeg data", "bad huffman", "huffman table", "invalid",
                 "bogus", "unsupported marker", "jpeg datastream contains no image")


def _decode_jpeg_strict(data: bytes, path: Path, *, colorspace: str, min_factor: float = 1.0):
    """Decode a JPEG with libjpeg-turbo, refusing it when the decoder reports damaged data.

    libjpeg only *warns* when the entropy-coded data end early or are corrupt, and fills the rest
    of the image with grey; OpenCV and Pillow pass such a photo on as if intact (a JPEG cut at
    60-92% with its end marker appended decodes with 31-52% grey rows). ``simplejpeg`` turns every
    warning into an exception of the call that decoded the file, so the check is per file and safe
    under threads and processes. The one warning common in intact phone JPEGs, extraneous bytes
    between the header's segments, is dealt with by dropping those bytes and decoding again (bytes
    before the end marker do not warn).

    Returns the array, or None when the file is a kind libjpeg-turbo does not decode (left to Pillow).
    """
    import simplejpeg

    for attempt in range(2):
        try:
            return simplejpeg.decode_jpeg(data, colorspace=colorspace, fastdct=False, fastupsample=False,
                                          min_factor=min_factor, strict=True)
        except MemoryError:
            raise ImageLoadError("not enough memory to decode the image; close other programs or resize the photo",
                                 path) from None
        except ValueError as e:
            message = str(e)
            if "extraneous bytes" in message and attempt == 0:
                data = _without_header_junk(data)
                continue
            if any(k in message.lower() for k in _DAMAGED_JPEG):
                raise ImageLoadError(f"image data is truncated or damaged (libjpeg: {message.rstrip('.')}); {_RECOPY}",
                                     path) from None
            return None
    return None


def _without_header_junk(data: bytes) -> bytes:
    """The JPEG with stray bytes between its header segments removed (up to the start of scan).

    Some phones and editors pad after the EXIF segment; libjpeg skips such bytes with a warning.
    A marker is 0xFF, then a code; every segment up to SOS (0xDA) carries its length.
    """
    out, i, n = bytearray(data[:2]), 2, len(data)
    while i + 4 <= n:
        if data[i] != 0xFF or data[i + 1] in (0x00, 0xFF):
            j = data.find(b"\xff", i + 1)
            while j != -1 and j + 1 < n and data[j + 1] in (0x00, 0xFF):
                j = data.find(b"\xff", j + 1)
            if j == -1:
                return data
            i = j
            continue
        length = int.from_bytes(data[i + 2:i + 4], "big")
        if data[i + 1] == 0xDA:  # start of scan: the entropy-coded data follow; keep the rest as it is
            out += data[i:]
            return bytes(out)
        out += data[i:i + 2 + length]
        i += 2 + length
    return data


def _check_jpeg_data(data: bytes, path: Path) -> None:
    """Refuse a JPEG whose entropy-coded data are damaged, for the JPEGs Pillow decodes (CMYK,
    grey, non-sRGB profiles): a decode at 1/8 scale still reads every coefficient, at a fraction
    of the cost of a full one."""
    import simplejpeg

    try:
        space = simplejpeg.decode_jpeg_header(data)[2]
    except ValueError:
        return  # a header libjpeg-turbo cannot read; Pillow raises its own error for it
    colorspace = {"Gray": "GRAY", "CMYK": "CMYK", "YCCK": "CMYK"}.get(space, "RGB")
    _decode_jpeg_strict(data, path, colorspace=colorspace, min_factor=8)


def read_capture_time(path: str | os.PathLike) -> datetime | None:
    """The photo's EXIF capture time without decoding its pixels, or None when it records none.

    Parameters
    ----------
    path : str or PathLike
        The photo file (read whole; only its header and EXIF are parsed).

    Returns
    -------
    datetime or None
        EXIF DateTimeOriginal, else DateTime: naive local time, or aware when the file records its
        UTC offset (OffsetTimeOriginal / OffsetTime).

    Raises
    ------
    ImageLoadError
        The file cannot be opened as a photo.

    Examples
    --------
    >>> read_capture_time("sample_images/astronaut/2026-01-05/IMG_20260105_100412.jpg")
    datetime.datetime(2026, 1, 5, 10, 4, 12)
    """
    path = Path(path)
    data = _read_bytes(path)
    return _metadata(_open(data, path, max_pixels=2**62))[1]  # no limit: the pixels are never decoded


def save_jpeg(path: str | os.PathLike, rgb: np.ndarray, *, quality: int = 92) -> None:
    """Write an (H, W, 3) or (H, W) uint8 array as a JPEG carrying no metadata (no EXIF, no ICC).

    Exports must not leak the source's time, location or camera, so nothing is copied over.
    The file is written beside its target and renamed over it, so a reader (or a second skinscan
    writing the same file) never sees half an image.

    Parameters
    ----------
    path : str or PathLike
        The file to write (replaced if it exists).
    rgb : ndarray (H, W, 3) or (H, W) uint8
        sRGB or grey pixels.
    quality : int
        JPEG quality, 1-100.

    Raises
    ------
    ValueError
        A bad array or quality.
    OutputError
        The file cannot be written.
    """
    if not 1 <= quality <= 100:
        raise ValueError(f"quality must be in 1..100, got {quality}")
    _save(path, rgb, "JPEG", quality=quality)


def encode_jpeg(rgb: np.ndarray, *, quality: int = 92) -> bytes:
    """The bytes of :func:`save_jpeg`'s file: a JPEG with no metadata.

    Parameters
    ----------
    rgb : ndarray (H, W, 3) or (H, W) uint8
        sRGB or grey pixels.
    quality : int
        JPEG quality, 1-100.

    Returns
    -------
    bytes

    Raises
    ------
    ValueError
        A bad array or quality.
    """
    if not 1 <= quality <= 100:
        raise ValueError(f"quality must be in 1..100, got {quality}")
    buf = io.BytesIO()
    _image(rgb).save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def save_png(path: str | os.PathLike, rgb: np.ndarray) -> None:
    """Write an (H, W, 3) or (H, W) uint8 array as a PNG carrying no metadata; see :func:`save_jpeg`.

    Parameters
    ----------
    path : str or PathLike
        The file to write (replaced if it exists).
    rgb : ndarray (H, W, 3) or (H, W) uint8
        sRGB or grey pixels.

    Raises
    ------
    ValueError
        A bad array.
    OutputError
        The file cannot be written.
    """
    _save(path, rgb, "PNG")


def _image(rgb: np.ndarray) -> Image.Image:
    rgb = np.asarray(rgb)
    if rgb.dtype != np.uint8 or not (rgb.ndim == 2 or (rgb.ndim == 3 and rgb.shape[2] == 3)):
        raise ValueError(f"expected an (H, W, 3) or (H, W) uint8 array, got shape {rgb.shape} {rgb.dtype}")
    return Image.fromarray(np.ascontiguousarray(rgb))


def _save(path: str | os.PathLike, rgb: np.ndarray, fmt: str, **options) -> None:
    image = _image(rgb)
    atomic_write(path, lambda tmp: image.save(tmp, format=fmt, **options), what="image")


def _read_bytes(path: Path) -> bytes:
    """The whole file, read once: it feeds both the decoder and the content hash."""
    if path.is_dir():
        raise ImageLoadError("is a folder, not a photo file", path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ImageLoadError("file not found", path) from None
    except PermissionError:
        raise ImageLoadError("permission denied: the file cannot be read; make it readable (chmod a+r) or copy it",
                             path) from None
    except OSError as e:
        raise ImageLoadError(f"cannot read the file ({e.strerror or e}); check the disk or copy the file again",
                             path) from None
    if not data:
        raise ImageLoadError(f"file is empty (0 bytes); {_RECOPY}", path)
    return data


@functools.cache
def _register_heif() -> None:
    # Imported on first use: libheif is a large native library that plain JPEG runs never need.
    import pillow_heif

    pillow_heif.register_heif_opener()


def _open(data: bytes, path: Path, *, max_pixels: int) -> Image.Image:
    """Identify the image lazily (header only) and check its format and declared size."""
    _register_heif()
    try:
        with warnings.catch_warnings():
            # The size is checked against max_pixels below; Pillow's lower warning threshold is only noise.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im = Image.open(io.BytesIO(_heif_major_brand(data)))
    except Image.DecompressionBombError:
        ceiling = 2 * Image.MAX_IMAGE_PIXELS
        raise ImageLoadError(f"image declares more than {ceiling:,} pixels, over the limit of "
                             f"{min(ceiling, max_pixels):,}; this is not a phone photo (or resize it)", path) from None
    except Image.UnidentifiedImageError:
        kind = _signature(data)
        reason = (f"damaged {kind} file (its header cannot be read); {_RECOPY}" if kind
                  else f"not an image file (starts with {data[:8]!r}){_what_it_is(data)}")
        raise ImageLoadError(reason, path) from None
    except MemoryError:
        raise ImageLoadError("not enough memory to read the image header", path) from None
    except Exception as e:  # plugins raise assorted errors on malformed headers
        kind = _signature(data)
        what = f"damaged {kind} file" if kind else "cannot read the image header"
        raise ImageLoadError(f"{what} ({e}); {_RECOPY}, or re-export it as JPEG", path) from e
    if im.format not in _SUPPORTED_FORMATS:
        raise ImageLoadError(f"{im.format} images are not supported (use JPEG, PNG, TIFF, WebP, BMP, HEIC "
                             "or GIF)", path)
    width, height = im.size
    if width * height > max_pixels:
        raise ImageLoadError(f"image declares {width}x{height} pixels, over the limit of {max_pixels:,}; "
                             "resize it (a face photo needs no more than about 50 megapixels)", path)
    return im


def _ftyp_brands(data: bytes) -> tuple[bytes, list[bytes]] | None:
    """(major brand, compatible brands) of an ISO base media file (HEIC, MP4, MOV...), or None."""
    if data[4:8] != b"ftyp" or len(data) < 16:
        return None
    size = int.from_bytes(data[:4], "big")
    box = data[16:min(max(size, 16), len(data), 4096)]
    return data[8:12], [box[i:i + 4] for i in range(0, len(box) - 3, 4)]


def _heif_major_brand(data: bytes) -> bytes:
    """The file with a HEIF major brand when only its compatible brands say HEIF.

    The major brand is advisory (ISO/IEC 14496-12 readers go by the compatible brands), but
    Pillow's HEIF plugin looks at the major brand alone; some phones and editors write another
    one. Same length, so no offset in the file moves.
    """
    brands = _ftyp_brands(data)
    if brands is None or brands[0] in _HEIF_BRANDS or not any(b in _HEIF_BRANDS for b in brands[1]):
        return data
    return data[:8] + b"mif1" + data[12:]


def _what_it_is(data: bytes) -> str:
    """What a common non-image file is, so the user knows what was picked up, and what to do."""
    brands = _ftyp_brands(data)
    if brands is not None and (brands[0] in _VIDEO_BRANDS or any(b in _VIDEO_BRANDS for b in brands[1])):
        return ": it is a video (MP4/MOV); to analyse it, export a still frame as JPEG"
    return f"{_kind(data)}; {_NOT_A_PHOTO}"


def _kind(data: bytes) -> str:
    if data.startswith(b"%PDF"):
        return ": it is a PDF document"
    if data.startswith(b"PK\x03\x04"):
        return ": it is a ZIP archive"
    head = data[:512]
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as e:  # a multi-byte character cut at the end of the sample is still text
        text = head[:e.start].decode("utf-8") if e.start >= len(head) - 3 else ""
    if text and all(c.isprintable() or c in "\t\r\n" for c in text):
        return ": it is a text file"
    return ""


def _signature(data: bytes) -> str | None:
    """The image format a file's first bytes claim, to tell a damaged image from a non-image."""
    brands = _ftyp_brands(data)
    if brands is not None and (brands[0] in _HEIF_BRANDS or any(b in _HEIF_BRANDS for b in brands[1])):
        return "HEIF"
    if data.startswith(b"RIFF") and data[8:12] == b"WEBP":
        return "WebP"
    return next((kind for magic, kind in _MAGIC.items() if data.startswith(magic)), None)


def _metadata(im: Image.Image) -> tuple[Image.Exif, datetime | None, bool]:
    """EXIF, capture time and whether GPS is present; malformed EXIF must not cost the pixels."""
    try:
        exif = im.getexif()
        sub = exif.get_ifd(_EXIF_IFD)
        capture_time = (_parse_exif_time(sub.get(_DATETIME_ORIGINAL), sub.get(_OFFSET_TIME_ORIGINAL))
                        or _parse_exif_time(exif.get(_DATETIME), sub.get(_OFFSET_TIME)))
        return exif, capture_time, bool(exif.get_ifd(_GPS_IFD))
    except Exception:
        return Image.Exif(), None, False


def _parse_exif_time(stamp: object, offset: object) -> datetime | None:
    """Parse EXIF "YYYY:MM:DD HH:MM:SS" (plus "+HH:MM" offset); None for absent or blank stamps."""
    if isinstance(stamp, bytes):
        stamp = stamp.decode("ascii", "replace")
    if not isinstance(stamp, str):
        return None
    try:
        t = datetime.strptime(stamp.strip("\x00 ")[:19], "%Y:%m:%d %H:%M:%S")
    except ValueError:  # cameras write "0000:00:00 00:00:00" or blanks when the clock was unset
        return None
    m = re.fullmatch(r"([+-])(\d\d):(\d\d)", offset.strip("\x00 ")) if isinstance(offset, str) else None
    if m:
        delta = timedelta(hours=int(m[2]), minutes=int(m[3]))
        t = t.replace(tzinfo=timezone(-delta if m[1] == "-" else delta))
    return t


@functools.cache
def _srgb() -> ImageCms.ImageCmsProfile:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))


def _source_profile(icc: bytes | None, mode: str) -> ImageCms.ImageCmsProfile | None:
    """The embedded profile when it needs converting: present, readable, matching the mode, not sRGB."""
    if not icc:
        return None
    try:
        profile = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        description = ImageCms.getProfileDescription(profile).strip().lower()
        space = profile.profile.xcolor_space.strip()
    except Exception:  # a broken profile is ignored, as browsers and viewers do
        return None
    # Missing an sRGB profile under another name only costs an identity conversion.
    if description.startswith("srgb") or space != {"L": "GRAY", "CMYK": "CMYK"}.get(mode, "RGB"):
        return None
    return profile


def _to_rgb(im: Image.Image, icc: bytes | None) -> tuple[np.ndarray, bool]:
    """(H, W, 3) uint8 sRGB pixels, and whether a colour profile was converted."""
    mode = im.mode
    if mode == "I" or mode.startswith("I;16"):
        gray = (np.clip(np.asarray(im), 0, 65535) >> 8).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=2), False
    if mode == "F":
        gray = np.clip(np.rint(np.nan_to_num(np.asarray(im, dtype=np.float64)) * 255), 0, 255).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=2), False
    if mode == "LAB":  # Pillow has no LAB->RGB conversion; littleCMS has, with its D50 Lab profile
        profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("LAB"))
    else:
        base = {"L": "L", "LA": "L", "CMYK": "CMYK"}.get(mode, "RGB")
        if mode != base:
            im = im.convert(base)  # drops alpha (not composited), expands palettes and bilevel images
        profile = _source_profile(icc, base)
    if profile is not None:
        # Relative colorimetric keeps in-gamut colours exact, which skin colour measurement relies on.
        im = ImageCms.profileToProfile(im, profile, _srgb(), outputMode="RGB",
                                       renderingIntent=ImageCms.Intent.RELATIVE_COLORIMETRIC)
    return np.asarray(im if im.mode == "RGB" else im.convert("RGB")), profile is not None
