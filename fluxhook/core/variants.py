"""A stored image's variants, as rules without I/O: what ``w``, ``format`` and ``q`` may say, the one variant a
request names of one original (its width snapped up to the list and never above the original's, its format chosen
by ``Accept`` for ``auto``), where it is stored beside the original, and the job's ``srcset``.

A fixed list of widths, formats and qualities, as Next.js's image optimizer has: every request falls on one of at most
a few hundred variants per image, each made once, so no caller can make fluxhook do unbounded work or store unbounded
bytes by asking for odd sizes."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from fluxhook.core.errors import InvalidVariant
from fluxhook.core.json_body import decimal, refuse_unknown

WIDTHS = (64, 128, 256, 384, 512, 640, 768, 1024, 1280, 1536, 2048)
FORMATS = ("jpeg", "png", "webp", "avif")
AUTO = "auto"
QUALITIES = (50, 75, 90)
DEFAULT_QUALITY = 75
# The query parameters that ask for a variant; with none of them, the original is answered as it is.
PARAMETERS = ("w", "format", "q")
# What a caller likely meant by a parameter a variant does not take.
HINTS = {"width": "use w", "size": "use w", "h": "a variant keeps the original's aspect ratio: give w alone",
         "height": "a variant keeps the original's aspect ratio: give w alone", "quality": "use q",
         "fm": "use format", "f": "use format", "type": "use format"}
CONTENT_TYPES = {"jpeg": "image/jpeg", "png": "image/png", "webp": "image/webp", "avif": "image/avif"}
_EXTENSIONS = {"jpeg": "jpg", "png": "png", "webp": "webp", "avif": "avif"}
_FORMAT_OF = {content_type: name for name, content_type in CONTENT_TYPES.items()}
# The stored files a variant may be made of: a job's image, a video's poster frame.
SOURCES = ("image", "poster")

_ALLOWED = {
    "w": f"a width in pixels from 1 to {WIDTHS[-1]} in plain digits (snapped up to one of {', '.join(map(str, WIDTHS))}, never "
         "above the original's)",
    "format": f"one of {', '.join(FORMATS)} or {AUTO}, in lower case (AVIF or WebP as the request's Accept lists them, else the "
              "original's)",
    "q": f"one of {', '.join(map(str, QUALITIES))} (default {DEFAULT_QUALITY})",
}


@dataclass(frozen=True)
class Ask:
    """What a request asked for, checked: None where it said nothing."""

    width: int | None = None
    format: str | None = None  # one of FORMATS, or AUTO
    quality: int | None = None


@dataclass(frozen=True)
class Variant:
    """One variant of one original: the width it is made at, its format, its quality (None for PNG: lossless), and
    whether its format was chosen by the request's ``Accept`` (its answer then varies by it)."""

    width: int
    format: str
    quality: int | None
    auto: bool = False

    @property
    def content_type(self) -> str:
        return CONTENT_TYPES[self.format]


def asked(pairs: Iterable[tuple[str, str]], *, where: str, beside: Sequence[str] = ()) -> Ask | None:
    """The variant a request's query asks for (``pairs``: its names and values as sent, repeats included); None when
    it names none of ``PARAMETERS`` (the original). A name that is neither one of them nor ``beside`` (the signed
    link's own) is ``UnknownField``; a bad or repeated value ``InvalidVariant``, naming it and what is allowed.

    Each value has one spelling (``w=512``, never ``+512``, `` 512`` or ``0512``; ``format=webp``, never ``WEBP``):
    every spelling a request may use is a URL a cache in front keeps apart, and each served the same bytes would make
    the cache hold and fill them again for nothing."""
    given: dict[str, list[str]] = {}
    for name, value in pairs:
        refuse_unknown([name], (*PARAMETERS, *beside), where=where, kind="query parameter", hints=HINTS)
        given.setdefault(name, []).append(value)
    if not any(name in given for name in PARAMETERS):
        return None
    for name in PARAMETERS:
        found = given.get(name, [])
        if len(found) > 1:
            raise InvalidVariant(f"'{name}' is given {len(found)} times; give it once: {_ALLOWED[name]}",
                                 parameter=name)
    one = {name: given[name][0] for name in PARAMETERS if name in given}
    return Ask(width=_width(one.get("w")), format=_format(one.get("format")), quality=_quality(one.get("q")))


def _refused(name: str, value: str) -> InvalidVariant:
    return InvalidVariant(f"'{name}' is {value[:40]!r}: it must be {_ALLOWED[name]}", parameter=name)


def _width(value: str | None) -> int | None:
    if value is None:
        return None
    width = decimal(value, WIDTHS[-1])
    if width is None or width < 1:
        raise _refused("w", value)
    return width


def _format(value: str | None) -> str | None:
    if value is None:
        return None
    if value not in (*FORMATS, AUTO):
        raise _refused("format", value)
    return value


def _quality(value: str | None) -> int | None:
    if value is None:
        return None
    quality = decimal(value, QUALITIES[-1])
    if quality not in QUALITIES:
        raise _refused("q", value)
    return quality


def snapped(width: int, original_width: int) -> int:
    """``width`` snapped up to the next of ``WIDTHS``, never above ``original_width`` (nor below 1)."""
    listed = next((w for w in WIDTHS if w >= width), WIDTHS[-1])
    return max(1, min(listed, original_width))


def by_accept(accept: str | None, original: str) -> str:
    """``auto``'s choice: AVIF where ``accept`` lists ``image/avif``, else WebP where it lists ``image/webp``, else
    ``original``. Listed means named with a quality above 0: ``*/*`` and ``image/*`` name neither."""
    listed = set()
    for part in (accept or "").split(","):
        media, *params = (piece.strip() for piece in part.split(";"))
        quality = next((p.split("=", 1)[1] for p in params if p.replace(" ", "").startswith("q=")), "1")
        try:
            if float(quality) > 0:
                listed.add(media.lower())
        except ValueError:
            continue
    return "avif" if "image/avif" in listed else "webp" if "image/webp" in listed else original


def resolve(ask: Ask, original_width: int, original_type: str, accept: str | None) -> Variant:
    """The one variant ``ask`` names of an original ``original_width`` pixels wide, of ``original_type``, for a request
    whose ``Accept`` is ``accept``."""
    original = _FORMAT_OF.get(original_type, "jpeg")  # JPEG for a content type no variant format has
    width = snapped(ask.width, original_width) if ask.width is not None else original_width
    auto = ask.format == AUTO
    chosen = by_accept(accept, original) if auto else ask.format or original
    quality = None if chosen == "png" else ask.quality or DEFAULT_QUALITY
    return Variant(width=width, format=chosen, quality=quality, auto=auto)


def storage_key(job_id: str, source: str, variant: Variant) -> str:
    """Where ``variant`` of the job's ``source`` file is stored, beside it: ``{job_id}-image-512w-q75.webp``."""
    if source not in SOURCES:
        raise ValueError(f"no variants of {source!r}")
    quality = f"-q{variant.quality}" if variant.quality is not None else ""
    return f"{job_id}-{source}-{variant.width}w{quality}.{_EXTENSIONS[variant.format]}"


def widths_up_to(original_width: int) -> list[int]:
    """The widths a srcset offers of an original ``original_width`` wide: each of ``WIDTHS`` up to it, and the
    original's own when it falls between two (a 1440-px image: ..., 1280, 1440)."""
    widths = [w for w in WIDTHS if w <= original_width]
    if original_width not in widths and original_width < WIDTHS[-1]:
        widths.append(original_width)
    return widths


def srcset(url: str, original_width: int, between: tuple[int, int] | None = None) -> str:
    """An ``<img srcset>`` of the signed ``url`` (which has a query already) at each of ``widths_up_to``, each
    ``format=auto``: ``url&w=64&format=auto 64w, url&w=128&format=auto 128w, ...``; with ``between`` (narrowest,
    widest), only those (for a place that shows the image at a known size), or the narrowest there is."""
    widths = widths_up_to(original_width)
    if between is not None:
        widths = [w for w in widths if between[0] <= w <= between[1]] or widths[:1]
    return ", ".join(f"{url}&w={w}&format={AUTO} {w}w" for w in widths)
