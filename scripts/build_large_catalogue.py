"""Build a large real catalogue (tens of thousands of items) from openly licensed clip art and icon sets.

Why: the demo catalogue (950 stamps) is too small to measure how retrieval, indexing and the app
scale; this builds a catalogue of real images with real titles and a category tree, from packages
that install from the registries this project uses, without committing any of it.

    python scripts/build_large_catalogue.py                        # everything, into data/large/
    python scripts/build_large_catalogue.py --limit 20000          # 20,000 items spread over sources and sets
    python scripts/build_large_catalogue.py --sources iconify --sets mdi,tabler --out /tmp/icons

Sources:

- ``openclipart``: the Open Clip Art Library, public domain, from Debian's ``openclipart-svg``
  (titles, descriptions, keywords and authors from each SVG's metadata) and ``openclipart-png``
  (the same drawings already rasterised, fit here into 256 x 256 px). ``apt-get download`` +
  ``dpkg-deb -x`` into a temporary folder; nothing is installed.
- ``iconify``: the icon sets of npm's ``@iconify/json`` (``npm pack`` into a temporary folder),
  each rendered from its SVG with cairosvg into 128 x 128 px. Only sets whose licence allows
  redistribution and modification without share-alike or non-commercial terms are used.

Left out on purpose (never used, whatever ``--sets`` says): emoji sets and emoji-like drawings
(openclipart's smilies, UI sets' icons named emoji / emoticon / smiley) -- emoji are reserved for
evaluation and must not leak into training or tuning -- and country-flag sets (a country flag has
one official design, so any flag drawing is the flag emoji's picture). Brand-logo sets (trademarks
that the icon licence does not cover), superseded archive sets and animated sets (their still frame
is not the icon) are left out unless named in ``--sets``.

Writes ``catalogue.csv`` (extra columns ``licence``, ``author``, ``source``), ``images/<source>/...png``,
``LICENSES.md`` (every set's licence and author) and ``licenses/`` (the Debian copyright files).
Re-running is idempotent: images already rendered are kept, the same inputs give the same bytes,
and images of items no longer selected are removed. Every file is written atomically.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import multiprocessing
import re
import struct
import subprocess
import sys
import tarfile
import tempfile
import time
import xml.etree.ElementTree as ET
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from recsys.atomic import write_bytes  # noqa: E402
from recsys.catalogue import write_manifest  # noqa: E402
from recsys.errors import CatalogueError, InputError  # noqa: E402
from scripts.build_demo_catalogue import _write_if_changed, check_built, readable_title  # noqa: E402

SOURCES = ("openclipart", "iconify")
OPENCLIPART_PACKAGES = ("openclipart-svg", "openclipart-png")
OPENCLIPART_ROOT = Path("usr/share/openclipart")
ICONIFY_PACKAGE = "@iconify/json"
ICON_SIDE = 128
CLIPART_SIDE = 256
MAX_PNG_PIXELS = 4096 * 4096  # bigger openclipart PNGs (posters of ~10^8 px) are drawn from their SVG instead
CLIPART_LICENCE = "public-domain"
# Permissive licences (SPDX ids) that allow redistribution and modification of the drawings with,
# at most, attribution. Copyleft (GPL, MPL, CC-BY-SA) and non-commercial licences are left out so
# that the whole catalogue can be redistributed under one simple rule: credit the authors.
ALLOWED_LICENCES = frozenset(
    {
        "MIT",
        "ISC",
        "Apache-2.0",
        "BSD-2-Clause",
        "BSD-3-Clause",
        "CC0-1.0",
        "Unlicense",
        "CC-BY-3.0",
        "CC-BY-4.0",
        "OFL-1.1",
    }
)
# Emoji sets named explicitly on top of the name / category test, so that a set renamed upstream
# (e.g. 'noto', whose id does not say "emoji") cannot slip through.
KNOWN_EMOJI_SETS = frozenset(
    {
        "twemoji",
        "noto",
        "noto-v1",
        "openmoji",
        "fxemoji",
        "emojione",
        "emojione-monotone",
        "emojione-v1",
        "fluent-emoji",
        "fluent-emoji-flat",
        "fluent-emoji-high-contrast",
        "streamline-emojis",
    }
)
OPT_IN_CATEGORIES = frozenset({"Logos", "Archive / Unmaintained"})
ANIMATED_TAG = "Contains Animations"
# openclipart folders whose drawings are emoji-like (smiley faces), country flags, or copies.
OPENCLIPART_SKIPPED = ("people/smilies", "signs_and_symbols/flags", "unsorted/duplicates")
# A dc:title shared by drawings of this many different names ("Part of the Flat Icon Collection ...")
# names a collection, not the drawing; numbered variants of one drawing (leaf_01, leaf_02) do not count.
GENERIC_TITLE_MIN_NAMES = 3
NOISE_KEYWORDS = frozenset({"hash"})  # a tag the library's upload tool put on ~1,900 drawings
MAX_KEYWORDS = 12
_SAFE_NAME = re.compile(r"[^A-Za-z0-9_.-]+")
_DC = "{http://purl.org/dc/elements/1.1/}"
_RDF = "{http://www.w3.org/1999/02/22-rdf-syntax-ns#}"
_CC_WORK = "{http://web.resource.org/cc/}Work"


@dataclass(frozen=True)
class Entry:
    """One catalogue item before rendering: its manifest row and how to make its image."""

    source: str
    group: str  # icon set prefix, or the clip art's folder path
    name: str
    title: str
    description: str
    category: str
    licence: str
    author: str
    origin: str  # where the drawing comes from (package and path / icon name)
    render_kind: str  # "svg" (text in render_data) or "png" (a file path in render_data)
    render_data: str
    side: int
    fallback_svg: str = ""  # for a "png": its SVG file, rendered instead when the PNG is huge


@dataclass
class IconSet:
    prefix: str
    info: dict
    entries: list[Entry] = field(default_factory=list)


# ---------------------------------------------------------------- pure rules


def slug(text: str) -> str:
    """``UI 16px / 32px`` -> ``ui-16px-32px``: a category path segment."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "other"


def safe_name(name: str) -> str:
    """A file-system-safe name (``viewmag+`` -> ``viewmag_``)."""
    return _SAFE_NAME.sub("_", name).lstrip(".") or "_"


def licence_allowed(spdx: str | None) -> bool:
    return spdx in ALLOWED_LICENCES


def is_emoji_set(prefix: str, info: dict) -> bool:
    """An emoji set by id, display name or category (``twemoji``, ``noto``: 'Noto Emoji', category 'Emoji')."""
    text = " ".join([prefix, str(info.get("name", "")), str(info.get("category", ""))]).lower()
    return prefix in KNOWN_EMOJI_SETS or "emoji" in text or "moji" in prefix


def is_flag_set(prefix: str, info: dict) -> bool:
    """A set of (country) flags: its id or name says so (``flag``, ``circle-flags``, 'CoreUI Flags')."""
    return "flag" in prefix or "flag" in str(info.get("name", "")).lower()


def set_exclusion(prefix: str, info: dict, *, listed: bool, chosen: frozenset[str] | None) -> str | None:
    """Why the set is left out, or None when it is used. ``chosen``: the sets the user named (None: all)."""
    if is_emoji_set(prefix, info):
        return "emoji (reserved for evaluation)"
    if is_flag_set(prefix, info):
        return "flags (the pictures of the flag emoji)"
    spdx = (info.get("license") or {}).get("spdx")
    if not licence_allowed(spdx):
        return f"licence {spdx or 'unknown'} not in the allow-list"
    if chosen is not None:
        return None if prefix in chosen else "not chosen (--sets)"
    if not listed or info.get("hidden"):
        return "hidden or deprecated in @iconify/json"
    if info.get("category") in OPT_IN_CATEGORIES:
        return f"category '{info.get('category')}' (only when named in --sets)"
    if ANIMATED_TAG in info.get("tags", []):
        return "animated (only when named in --sets)"
    return None


def icon_category(prefix: str, info: dict) -> str:
    return f"icons/{slug(str(info.get('category') or 'other'))}/{prefix}"


def clipart_category(folder: str) -> str:
    return f"clipart/{folder}" if folder else "clipart"


def assign_ids(keys: Sequence[tuple[str, str, str]]) -> list[str]:
    """``<source>-<group>-<name>`` per key, stable for a given input.

    A hyphenated group can make two keys spell the same id (``material-symbols`` + ``light-group``
    and ``material-symbols-light`` + ``group``); those ids use ``--`` between group and name instead.
    Compute over every item of the packages (not only the selected ones) so that ``--limit`` and
    ``--sets`` never change an item's id.
    """
    plain = [f"{s}-{g.replace('/', '-')}-{n}" for s, g, n in keys]
    counts = Counter(plain)
    ids = [p if counts[p] == 1 else f"{s}-{g.replace('/', '-')}--{n}" for p, (s, g, n) in zip(plain, keys, strict=True)]
    dupes = [i for i, c in Counter(ids).items() if c > 1]
    if dupes:
        raise CatalogueError(f"item ids collide even after disambiguation: {', '.join(dupes[:5])}.")
    return ids


def spread(capacities: dict[str, int], limit: int | None) -> dict[str, int]:
    """Share ``limit`` items as evenly as possible over buckets of the given sizes (water-filling).

    A bucket smaller than its share gives the rest to the others; ties go to buckets in key order.
    """
    if limit is None or limit >= sum(capacities.values()):
        return dict(capacities)
    quota = dict.fromkeys(capacities, 0)
    left = max(limit, 0)
    open_keys = sorted(k for k, c in capacities.items() if c > 0)
    while left > 0 and open_keys:
        share, extra = divmod(left, len(open_keys))
        for i, key in enumerate(open_keys):
            take = min(share + (1 if i < extra else 0), capacities[key] - quota[key])
            quota[key] += take
            left -= take
        open_keys = [k for k in open_keys if quota[k] < capacities[k]]
    return quota


def evenly(items: Sequence, k: int) -> list:
    """``k`` items spread evenly over the (sorted) sequence, so a cap samples every part of it."""
    n = len(items)
    if k >= n:
        return list(items)
    return [items[i * n // k] for i in range(k)]


def icon_svg(icon: dict, defaults: dict, side: int) -> str:
    """A standalone SVG for an iconify icon, sized to fit ``side`` x ``side`` px (aspect kept), drawn in black."""
    left, top = icon.get("left", defaults.get("left", 0)), icon.get("top", defaults.get("top", 0))
    width, height = icon.get("width", defaults.get("width", 16)), icon.get("height", defaults.get("height", 16))
    w, h = fit(width, height, side)
    return (
        '<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" '
        f'width="{w}" height="{h}" viewBox="{left} {top} {width} {height}" color="#000000">'
        f"{icon['body']}</svg>"
    )


def icon_description(set_name: str, topics: Iterable[str]) -> str:
    topics = sorted(set(topics))
    return f"{set_name} icon" + (f"; topics: {', '.join(topics)}." if topics else ".")


# ---------------------------------------------------------------- iconify


@dataclass
class IconifyPackage:
    version: str
    sets: list[IconSet]  # the sets used, with their entries
    skipped: dict[str, str]  # prefix -> why the set is left out
    all_keys: list[tuple[str, str, str]]  # every icon of every set, used or not: ids must not depend on --sets


def read_iconify(package: Path, chosen: frozenset[str] | None) -> IconifyPackage:
    """The usable icon sets of an unpacked ``@iconify/json`` package (``chosen``: the sets named in --sets)."""
    collections_path = package / "collections.json"
    if not collections_path.is_file():
        raise InputError(f"'{package}' is not an unpacked {ICONIFY_PACKAGE} package (no collections.json).")
    listed = json.loads(collections_path.read_text(encoding="utf-8"))
    version = json.loads((package / "package.json").read_text(encoding="utf-8")).get("version", "")
    files = {p.stem: p for p in sorted((package / "json").glob("*.json"))}
    if chosen is not None:
        unknown = sorted(chosen - set(files))
        if unknown:
            raise InputError(
                f"unknown icon set(s) {', '.join(unknown)}; {len(files)} sets, e.g. {', '.join(list(files)[:5])}."
            )
    result = IconifyPackage(version=version, sets=[], skipped={}, all_keys=[])
    for prefix, path in files.items():
        data = json.loads(path.read_text(encoding="utf-8"))
        result.all_keys.extend(("iconify", prefix, safe_name(name)) for name in sorted(data.get("icons", {})))
        listed_info = listed.get(prefix)
        info = {**data.get("info", {}), **(listed_info or {})}
        reason = set_exclusion(prefix, info, listed=listed_info is not None, chosen=chosen)
        if reason and chosen is not None and prefix in chosen:
            raise InputError(f"icon set '{prefix}' cannot be used: {reason}.")
        if reason:
            result.skipped[prefix] = reason
        else:
            result.sets.append(_icon_set(prefix, info, data, version))
    return result


def is_emoji_like_icon(name: str) -> bool:
    """A UI set's emoji drawings (``bi:emoji-smile``, ``mdi:emoticon-happy``): emoji by another name,
    kept out like emoji sets."""
    return any(word in name.lower() for word in ("emoji", "emoticon", "smiley"))


def _icon_set(prefix: str, info: dict, data: dict, version: str) -> IconSet:
    topics: dict[str, list[str]] = defaultdict(list)
    for topic, names in (data.get("categories") or {}).items():
        for name in names:
            topics[name].append(topic)
    licence = info["license"]["spdx"]
    author = str((info.get("author") or {}).get("name", ""))
    set_name = str(info.get("name", prefix))
    defaults = {k: data[k] for k in ("left", "top", "width", "height") if k in data}
    entries = [
        Entry(
            source="iconify",
            group=prefix,
            name=safe_name(name),
            title=readable_title(name),
            description=icon_description(set_name, topics.get(name, ())),
            category=icon_category(prefix, info),
            licence=licence,
            author=author,
            origin=f"{ICONIFY_PACKAGE} {version}".strip() + f": {prefix}:{name}",
            render_kind="svg",
            render_data=icon_svg(icon, defaults, ICON_SIDE),
            side=ICON_SIDE,
        )
        for name, icon in sorted(data.get("icons", {}).items())
        if not icon.get("hidden") and icon.get("body") and not is_emoji_like_icon(name)
    ]
    return IconSet(prefix=prefix, info=info, entries=entries)


def unpack_iconify(source: Path, workdir: Path) -> Path:
    """The unpacked package folder from an ``npm pack`` tarball (only the files used), or ``source`` itself."""
    if source.is_dir():
        return source / "package" if (source / "package" / "collections.json").is_file() else source
    wanted = re.compile(r"^package/(package\.json|collections\.json|json/[^/]+\.json)$")
    with tarfile.open(source, "r:gz") as tar:
        members = [m for m in tar.getmembers() if m.isfile() and wanted.match(m.name)]
        tar.extractall(workdir, members=members, filter="data")
    return workdir / "package"


def fetch_iconify(workdir: Path) -> Path:
    """``npm pack @iconify/json`` into ``workdir``; returns the tarball."""
    out = _run(["npm", "pack", ICONIFY_PACKAGE, "--pack-destination", str(workdir)], cwd=workdir)
    name = out.stdout.decode().strip().splitlines()[-1]
    return workdir / name


# ---------------------------------------------------------------- openclipart


def clipart_metadata(svg: Path) -> dict[str, object]:
    """Title, description, keywords and author from the SVG's RDF metadata (empty when unreadable)."""
    try:
        work = ET.parse(svg).getroot().find(f".//{_CC_WORK}")
    except (ET.ParseError, OSError):
        return {}
    if work is None:
        return {}

    def text(path: str) -> str:
        node = work.find(path)
        return " ".join((node.text or "").split()) if node is not None else ""

    keywords = [
        " ".join((li.text or "").replace("_", " ").split()).lower() for li in work.findall(f"{_DC}subject//{_RDF}li")
    ]
    return {
        "title": text(f"{_DC}title"),
        "description": text(f"{_DC}description"),
        "keywords": list(dict.fromkeys(k for k in keywords if k and k not in NOISE_KEYWORDS)),
        "author": text(f"{_DC}creator//{_DC}title"),
    }


def _variant_base(stem: str) -> str:
    """``leaf_geral_02`` -> ``leaf_geral``: the name without its numbered-variant suffix."""
    return re.sub(r"[_\-]*\d+$", "", stem) or stem


def clipart_title_from_name(stem: str) -> str:
    """``saturn_dan_gerhards_01`` -> ``Saturn dan gerhards`` (the numbered-variant suffix dropped)."""
    return readable_title(_variant_base(stem))


def clipart_text(stem: str, meta: dict, generic_titles: set[str]) -> tuple[str, str]:
    """(title, description): the drawing's own title, or its file name when the title names a collection."""
    own = str(meta.get("title", ""))
    generic = not own or own in generic_titles
    title = clipart_title_from_name(stem) if generic else readable_title(own)
    parts = []
    description = str(meta.get("description", ""))
    if description and description != own:
        parts.append(description.rstrip(".") + ".")
    if own and generic:
        parts.append(f"From: {own.rstrip('.')}.")
    keywords = list(meta.get("keywords", []))[:MAX_KEYWORDS]
    if keywords:
        parts.append("Keywords: " + ", ".join(keywords) + ".")
    return title, " ".join(parts)


def read_openclipart(root: Path, version: str) -> list[Entry]:
    """Every clip-art drawing that has both its SVG (metadata) and PNG, minus the skipped folders."""
    svg_root, png_root = root / OPENCLIPART_ROOT / "svg", root / OPENCLIPART_ROOT / "png"
    if not svg_root.is_dir() or not png_root.is_dir():
        raise InputError(
            f"'{root}' lacks {OPENCLIPART_ROOT}/svg and /png: extract both {' and '.join(OPENCLIPART_PACKAGES)}."
        )
    found = []
    for svg in sorted(svg_root.rglob("*.svg")):
        rel = svg.relative_to(svg_root).with_suffix("")
        folder = rel.parent.as_posix() if rel.parent != Path(".") else ""
        png = png_root / rel.with_suffix(".png")
        if any(folder == s or folder.startswith(s + "/") for s in OPENCLIPART_SKIPPED) or not png.is_file():
            continue
        found.append((folder, rel, svg, png, clipart_metadata(svg)))
    names_per_title: dict[str, set[str]] = defaultdict(set)
    for _folder, rel, _svg, _png, meta in found:
        names_per_title[str(meta.get("title", ""))].add(_variant_base(rel.name))
    generic = {t for t, names in names_per_title.items() if t and len(names) >= GENERIC_TITLE_MIN_NAMES}
    pkg = f"openclipart-png {version}".strip()
    entries = []
    for folder, rel, svg, png, meta in found:
        title, description = clipart_text(rel.name, meta, generic)
        entries.append(
            Entry(
                source="openclipart",
                group=folder,
                name=safe_name(rel.name),
                title=title,
                description=description,
                category=clipart_category(folder),
                licence=CLIPART_LICENCE,
                author=str(meta.get("author", "")),
                origin=f"{pkg}: {(OPENCLIPART_ROOT / 'png' / rel.with_suffix('.png')).as_posix()}",
                render_kind="png",
                render_data=str(png),
                side=CLIPART_SIDE,
                fallback_svg=str(svg),
            )
        )
    return entries


def unpack_openclipart(source: Path | None, workdir: Path) -> tuple[Path, str]:
    """(extracted root, package version): ``apt-get download`` both packages, or use the given folder.

    ``source`` may hold the two ``.deb`` files, or be a tree already extracted with ``dpkg-deb -x``.
    """
    if source is not None and (source / OPENCLIPART_ROOT).is_dir():
        return source, ""
    debdir = source or workdir
    if source is None:
        _run(["apt-get", "download", *OPENCLIPART_PACKAGES], cwd=workdir)
    extracted, version = workdir / "openclipart", ""
    for package in OPENCLIPART_PACKAGES:
        debs = sorted(debdir.glob(f"{package}_*.deb"))
        if not debs:
            raise InputError(f"no {package}_*.deb in '{debdir}'.")
        version = _run(["dpkg-deb", "-f", str(debs[-1]), "Version"]).stdout.decode().strip()
        _run(["dpkg-deb", "-x", str(debs[-1]), str(extracted)])
    return extracted, version


def _run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(cmd, check=True, capture_output=True, **kw)
    except FileNotFoundError as exc:
        raise InputError(
            f"'{cmd[0]}' is not installed; fetch the packages yourself and pass --openclipart-from / --iconify-from."
        ) from exc
    except subprocess.CalledProcessError as exc:
        raise InputError(f"{' '.join(cmd)} failed: {exc.stderr.decode(errors='replace').strip()}") from exc


# ---------------------------------------------------------------- rendering


def png_size(path: str | Path) -> tuple[int, int]:
    """(width, height) from a PNG's header, without decoding (or tripping PIL's decompression-bomb check)."""
    with open(path, "rb") as fh:
        head = fh.read(24)
    if len(head) < 24 or head[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError(f"{path} is not a PNG file")
    return struct.unpack(">II", head[16:24])


def fit(width: float, height: float, side: int) -> tuple[int, int]:
    """The size that fits ``width`` x ``height`` into ``side`` x ``side`` keeping the aspect ratio."""
    scale = side / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def render_png(kind: str, data: str, side: int, fallback_svg: str = "") -> bytes | None:
    """The image as an RGBA PNG fitting ``side`` x ``side``; None when it is fully transparent.

    PNGs are saved with zlib's default level rather than ``optimize``: 6x faster for ~9% more bytes,
    which matters at hundreds of thousands of images.
    """
    from PIL import Image

    if kind == "png" and fallback_svg and math.prod(png_size(data)) > MAX_PNG_PIXELS:
        import cairosvg  # a poster-sized PNG: draw its SVG at the final size instead of decoding ~10^8 px

        width, height = fit(*png_size(data), side)
        img = Image.open(io.BytesIO(cairosvg.svg2png(url=fallback_svg, output_width=width, output_height=height)))
    elif kind == "svg":
        import cairosvg

        img = Image.open(io.BytesIO(cairosvg.svg2png(bytestring=data.encode("utf-8"))))
    else:
        img = Image.open(data)
    img = img.convert("RGBA")
    img.thumbnail((side, side), Image.Resampling.LANCZOS)
    if img.getchannel("A").getbbox() is None:
        return None
    out = io.BytesIO()
    img.save(out, format="PNG")
    return out.getvalue()


def render_job(job: tuple[str, str, str, int, str]) -> tuple[str, int, str]:
    """Worker: (status, bytes on disk, error). Status: ``kept`` (already there), ``new``, ``blank``, ``failed``."""
    kind, data, fallback_svg, side, target = job
    path = Path(target)
    if path.is_file():
        return "kept", path.stat().st_size, ""
    try:
        png = render_png(kind, data, side, fallback_svg)
    except Exception as exc:  # a drawing the renderer cannot handle is dropped and reported, not fatal
        return "failed", 0, f"{type(exc).__name__}: {exc}"[:200]
    if png is None:
        return "blank", 0, ""
    write_bytes(path, png)
    return "new", len(png), ""


def image_rel(entry: Entry) -> str:
    group = "/".join(safe_name(part) for part in entry.group.split("/") if part)
    return "/".join(p for p in ("images", entry.source, group, f"{entry.name}.png") if p)


# ---------------------------------------------------------------- build


def select(by_source: dict[str, dict[str, list[Entry]]], limit: int | None) -> list[Entry]:
    """The items to build: ``limit`` spread evenly over sources, then over groups (icon sets) within a source."""
    source_quota = spread({s: sum(map(len, groups.values())) for s, groups in by_source.items()}, limit)
    chosen = []
    for source in sorted(by_source):
        groups = by_source[source]
        quota = spread({g: len(e) for g, e in groups.items()}, source_quota[source])
        for group in sorted(groups):
            chosen.extend(evenly(groups[group], quota[group]))
    return chosen


def build(
    out: Path,
    by_source: dict[str, dict[str, list[Entry]]],
    ids: dict[tuple[str, str, str], str],
    *,
    limit: int | None,
    jobs: int,
    log=print,
) -> tuple[list[Entry], dict[str, object]]:
    """Render the selected items into ``out`` and write the manifest; returns (items kept, summary counts).

    ``ids``: the item id of every (source, group, name) key, from :func:`assign_ids`.
    """
    start = time.perf_counter()
    chosen = select(by_source, limit)
    targets = [image_rel(e) for e in chosen]
    log(f"rendering {len(chosen)} images with {jobs} worker(s) into {out}")
    work = [
        (e.render_kind, e.render_data, e.fallback_svg, e.side, str(out / rel))
        for e, rel in zip(chosen, targets, strict=True)
    ]
    results: list[tuple[str, int, str]] = []
    status: Counter[str] = Counter()
    step = max(500, len(work) // 20)
    pool = multiprocessing.Pool(jobs) if jobs > 1 else None
    try:
        mapped = pool.imap(render_job, work, chunksize=32) if pool else map(render_job, work)
        for n, result in enumerate(mapped, start=1):
            results.append(result)
            status[result[0]] += 1
            if n % step == 0 or n == len(work):
                rate = n / max(time.perf_counter() - start, 1e-9)
                states = ", ".join(f"{k} {v}" for k, v in sorted(status.items()))
                log(f"  {n}/{len(work)} images ({states}), {rate:.0f}/s")
    finally:
        if pool:
            pool.close()
            pool.join()
    failures = [(entry, error) for entry, (state, _, error) in zip(chosen, results, strict=True) if state == "failed"]
    for entry, error in failures[:20]:
        log(f"  could not render {entry.origin}: {error}")
    if len(failures) > 20:
        log(f"  ... and {len(failures) - 20} more that could not be rendered")
    kept, rows, wanted, size = [], [], set(), 0
    for entry, rel, (state, nbytes, _) in zip(chosen, targets, results, strict=True):
        if state in ("blank", "failed"):
            continue
        kept.append(entry)
        wanted.add(rel)
        size += nbytes
        rows.append(
            {
                "id": ids[(entry.source, entry.group, entry.name)],
                "title": entry.title,
                "description": entry.description,
                "category": entry.category,
                "image": rel,
                "audio": "",
                "licence": entry.licence,
                "author": entry.author,
                "source": entry.origin,
            }
        )
    removed = _remove_stale(out / "images", out, wanted)
    write_manifest(out, rows)
    summary = {
        "items": len(rows),
        "per_source": dict(sorted(Counter(e.source for e in kept).items())),
        "per_licence": dict(Counter(e.licence for e in kept).most_common()),
        "categories": len({e.category for e in kept}),
        "icon_sets": len({e.group for e in kept if e.source == "iconify"}),
        "rendered": status["new"],
        "kept": status["kept"],
        "blank": status["blank"],
        "failed": status["failed"],
        "stale_removed": removed,
        "image_mb": round(size / 2**20, 1),
    }
    return kept, summary


def _remove_stale(images: Path, out: Path, wanted: set[str]) -> int:
    """Delete images of items no longer selected (and temp files of an interrupted run)."""
    if not images.is_dir():
        return 0
    removed = 0
    for path in sorted(images.rglob("*"), reverse=True):
        if path.is_file() and path.relative_to(out).as_posix() not in wanted:
            path.unlink()
            removed += 1
        elif path.is_dir() and not any(path.iterdir()):
            path.rmdir()
    return removed


def licences_markdown(clipart: tuple[str, int] | None, iconify: IconifyPackage, counts: Counter) -> str:
    """``LICENSES.md``: where every item comes from, under which licence, by whom, and what was left out."""
    lines = [
        "# Licences of this catalogue",
        "",
        "Built by `scripts/build_large_catalogue.py`. Column `licence` of `catalogue.csv` gives each item's",
        "licence (SPDX id), `author` its author and `source` the package and file or icon it was made from.",
        "Every image was modified: rasterised or resized to PNG, transparency kept.",
        "",
    ]
    if clipart is not None:
        version, n = clipart
        lines += [
            f"## Open Clip Art Library ({n} items)",
            "",
            f"From Debian's `openclipart-svg` and `openclipart-png` {version}: public domain (Creative Commons",
            "Public Domain Dedication / Certification); the packages' copyright files are in `licenses/`.",
            f"Left out: the folders {', '.join(f'`{s}`' for s in OPENCLIPART_SKIPPED)} (emoji-like smilies, country",
            "flags, duplicates).",
            "",
        ]
    if iconify.sets:
        lines += [
            f"## Iconify icon sets (npm `{ICONIFY_PACKAGE}` {iconify.version})",
            "",
            f"Rendered from each set's SVG at {ICON_SIDE} px. Attribution for CC-BY and other licences: the",
            "author and licence of every set are below and in each item's row.",
            "",
            "| set | name | author | licence | items |",
            "| --- | --- | --- | --- | ---: |",
        ]
        for s in iconify.sets:
            if not counts[s.prefix]:
                continue
            author, lic = s.info.get("author") or {}, s.info.get("license") or {}
            who = f"[{author.get('name', '')}]({author['url']})" if author.get("url") else author.get("name", "")
            what = f"[{lic.get('spdx')}]({lic['url']})" if lic.get("url") else str(lic.get("spdx"))
            lines.append(f"| `{s.prefix}` | {s.info.get('name', '')} | {who} | {what} | {counts[s.prefix]} |")
        lines += ["", "Sets left out:", ""]
        lines += [f"- `{prefix}`: {reason}" for prefix, reason in sorted(iconify.skipped.items())]
        lines.append("")
    return "\n".join(lines)


def _csv(text: str | None) -> list[str]:
    return [t.strip() for t in (text or "").split(",") if t.strip()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "data" / "large", help="output folder (default data/large)")
    parser.add_argument("--limit", type=int, help="at most N items, spread evenly over sources and icon sets")
    parser.add_argument("--sources", default=",".join(SOURCES), help=f"comma-separated, of {', '.join(SOURCES)}")
    parser.add_argument("--sets", help="comma-separated iconify set ids to use (default: every eligible set)")
    parser.add_argument("--jobs", type=int, default=2, help="rendering worker processes (default 2)")
    parser.add_argument(
        "--openclipart-from", type=Path, help="folder with the two openclipart .debs, or their extracted tree"
    )
    parser.add_argument("--iconify-from", type=Path, help="an `npm pack @iconify/json` tarball or its unpacked folder")
    args = parser.parse_args(argv)
    sources = _csv(args.sources)
    if not sources or set(sources) - set(SOURCES):
        parser.error(f"--sources takes {', '.join(SOURCES)}; got {args.sources!r}")
    if args.limit is not None and args.limit < 1:
        parser.error("--limit must be at least 1")
    if args.jobs < 1:
        parser.error("--jobs must be at least 1")
    chosen_sets = frozenset(_csv(args.sets)) if args.sets else None
    try:  # checked here, not per icon in the workers, so that a missing library is one clear message
        import cairosvg  # noqa: F401
    except (ImportError, OSError) as exc:
        print(
            f"error: cairosvg cannot run ({exc}); pip install -r requirements.txt, apt-get install libcairo2",
            file=sys.stderr,
        )
        return 2
    start = time.perf_counter()
    out = args.out.resolve()
    try:
        with tempfile.TemporaryDirectory(prefix="large-catalogue-") as tmp:
            workdir = Path(tmp)
            by_source: dict[str, dict[str, list[Entry]]] = {}
            clipart_version, iconify = None, IconifyPackage("", [], {}, [])
            universe: list[tuple[str, str, str]] = []
            copyrights: dict[str, bytes] = {}
            if "openclipart" in sources:
                root, clipart_version = unpack_openclipart(args.openclipart_from, workdir)
                entries = read_openclipart(root, clipart_version)
                by_source["openclipart"] = {"": entries}
                universe += [(e.source, e.group, e.name) for e in entries]
                for package in OPENCLIPART_PACKAGES:
                    copyright_file = root / "usr/share/doc" / package / "copyright"
                    if copyright_file.is_file():
                        copyrights[f"{package}.copyright"] = copyright_file.read_bytes()
                print(f"openclipart {clipart_version}: {len(entries)} drawings")
            if "iconify" in sources:
                tarball = args.iconify_from or fetch_iconify(workdir)
                package = unpack_iconify(tarball, workdir / "iconify")
                iconify = read_iconify(package, chosen_sets)
                by_source["iconify"] = {s.prefix: s.entries for s in iconify.sets}
                universe += iconify.all_keys
                print(
                    f"{ICONIFY_PACKAGE} {iconify.version}: {sum(len(s.entries) for s in iconify.sets)} icons in "
                    f"{len(iconify.sets)} sets ({len(iconify.skipped)} sets left out)"
                )
            ids = dict(zip(universe, assign_ids(universe), strict=True))
            kept, summary = build(out, by_source, ids, limit=args.limit, jobs=args.jobs)
    except (InputError, CatalogueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    per_set = Counter(e.group for e in kept if e.source == "iconify")
    n_clipart = sum(e.source == "openclipart" for e in kept)
    clipart = (clipart_version, n_clipart) if clipart_version is not None else None
    _write_if_changed(out / "LICENSES.md", licences_markdown(clipart, iconify, per_set).encode())
    for name, data in copyrights.items():
        _write_if_changed(out / "licenses" / name, data)
    summary["total_mb"] = round(sum(p.stat().st_size for p in out.rglob("*") if p.is_file()) / 2**20, 1)
    summary["seconds"] = round(time.perf_counter() - start, 1)
    for key, value in summary.items():
        print(f"{key}: {value}")
    return check_built(out)


if __name__ == "__main__":
    raise SystemExit(main())
