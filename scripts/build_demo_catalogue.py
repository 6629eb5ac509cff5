"""Build the committed demo catalogue ``data/tuxpaint/`` from Debian's ``tuxpaint-stamps-default``.

Why this source: ~950 clip-art stamps (GPL-2+) with an English description, a category
folder tree and, for some, a sound effect -- a small, freely redistributable catalogue that
exercises every modality of the recommender.

    python scripts/build_demo_catalogue.py                 # apt-get download the package
    python scripts/build_demo_catalogue.py --deb PKG.deb   # use a .deb you already have

What it writes (re-running gives byte-identical files):

- ``images/<id>.png``: every stamp image (PNG, or SVG rendered with ``rsvg-convert``), fit into
  256 x 256 px keeping the aspect ratio and the transparency, optimised;
- ``sounds/<id>.ogg``: the stamp's sound effect (``NAME.ogg``, else the English localised sound
  ``NAME_en_GB.ogg`` / ``NAME_en.ogg``), copied as is. The spoken descriptions
  (``NAME_desc*.ogg`` / ``.wav``) are not sound effects and are left out, as are sound files
  that :func:`recsys.media.load_audio` rejects (a few silent ones);
- ``catalogue.csv`` (see ``recsys/catalogue/__init__.py``), ``COPYRIGHT`` (the package's) and ``README.md``.

Stamps named ``NAME_mirror`` are the mirrored drawing of ``NAME`` (Tux Paint shows them when
the user flips the stamp), not separate stamps, so they are skipped.
"""

from __future__ import annotations

import argparse
import io
import re
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from recsys.atomic import write_bytes, write_text  # noqa: E402
from recsys.catalogue import load_catalogue, write_manifest  # noqa: E402
from recsys.errors import InputError  # noqa: E402
from recsys.media import load_audio  # noqa: E402

PACKAGE = "tuxpaint-stamps-default"
STAMPS_DIR = Path("usr/share/tuxpaint/stamps")
COPYRIGHT_FILE = Path(f"usr/share/doc/{PACKAGE}/copyright")
MAX_SIDE = 256
ENGLISH_SOUND_SUFFIXES = ("", "_en_GB", "_en")
_LOCALE_LINE = re.compile(r"^[a-z]{2,3}(_[A-Z]{2})?(@\w+)?\.utf8=")


@dataclass(frozen=True)
class Stamp:
    category: str  # folder path under stamps/, e.g. "animals/marsupials"
    stem: str
    image: Path  # the SVG if there is one (Tux Paint prefers it), else the PNG
    description: str
    sound: Path | None


def _run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(cmd, check=True, capture_output=True, **kw)
    except FileNotFoundError as exc:
        raise SystemExit(f"'{cmd[0]}' is not installed; {_INSTALL_HINTS.get(cmd[0], '')}") from exc
    except subprocess.CalledProcessError as exc:
        raise SystemExit(f"{' '.join(cmd)} failed: {exc.stderr.decode(errors='replace').strip()}") from exc


_INSTALL_HINTS = {
    "rsvg-convert": "install it with: apt-get install librsvg2-bin",
    "dpkg-deb": "this script needs Debian's dpkg tools (apt-get install dpkg).",
    "apt-get": f"download {PACKAGE}_*.deb yourself and pass --deb PATH.",
}


def fetch_deb(workdir: Path) -> Path:
    """``apt-get download`` the package into ``workdir`` (needs ``apt-get update`` once)."""
    _run(["apt-get", "download", PACKAGE], cwd=workdir)
    debs = sorted(workdir.glob(f"{PACKAGE}_*.deb"))
    if not debs:
        raise SystemExit(f"apt-get download produced no {PACKAGE} .deb in {workdir}")
    return debs[-1]


def english_description(txt: Path) -> str:
    """The first line of a stamp's ``.txt`` is the English description; the others are ``ll.utf8=...``."""
    for line in txt.read_text(encoding="utf-8", errors="replace").splitlines():
        line = line.strip()
        if line and not _LOCALE_LINE.match(line):
            return line
    return ""


def readable_title(stem: str) -> str:
    """``pumpkin_small`` -> ``Pumpkin small``; ``fireman240a`` -> ``Fireman 240a``."""
    words = re.sub(r"[_\-]+", " ", stem)
    words = re.sub(r"(?<=[A-Za-z])(?=\d)|(?<=\d)(?=[A-Za-z]{2,})", " ", words)
    words = " ".join(words.split())
    return words[:1].upper() + words[1:]


def find_stamps(stamps_root: Path) -> list[Stamp]:
    by_key: dict[tuple[Path, str], dict[str, Path]] = {}
    for path in stamps_root.rglob("*"):
        if path.suffix in (".png", ".svg") and path.is_file():
            by_key.setdefault((path.parent, path.stem), {})[path.suffix] = path
    stamps = []
    for (folder, stem), files in sorted(by_key.items()):
        if stem.endswith("_mirror") and (folder, stem[: -len("_mirror")]) in by_key:
            continue
        txt = folder / f"{stem}.txt"
        description = english_description(txt) if txt.exists() else ""
        sound = next(
            (
                folder / f"{stem}{sfx}.ogg"
                for sfx in ENGLISH_SOUND_SUFFIXES
                if (folder / f"{stem}{sfx}.ogg").is_file()
            ),
            None,
        )
        stamps.append(
            Stamp(
                category=folder.relative_to(stamps_root).as_posix(),
                stem=stem,
                image=files.get(".svg", files.get(".png")),
                description=description,
                sound=sound,
            )
        )
    return stamps


def assign_ids(stamps: list[Stamp]) -> list[str]:
    """The file stem, or ``category-path-stem`` for every stamp whose stem appears more than once."""
    counts = Counter(s.stem for s in stamps)
    ids = [s.stem if counts[s.stem] == 1 else f"{s.category.replace('/', '-')}-{s.stem}" for s in stamps]
    dupes = [i for i, n in Counter(ids).items() if n > 1]
    if dupes:
        raise SystemExit(f"ids still collide after disambiguation: {dupes[:5]}")
    return ids


def render_png(image: Path) -> bytes:
    """The stamp as an optimised RGBA PNG fitting in MAX_SIDE x MAX_SIDE (never upscaled)."""
    if image.suffix == ".svg":
        raw = _run(
            ["rsvg-convert", "--keep-aspect-ratio", "-w", str(MAX_SIDE), "-h", str(MAX_SIDE), str(image)]
        )
        img = Image.open(io.BytesIO(raw.stdout))
    else:
        img = Image.open(image)
    img = img.convert("RGBA")
    img.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    img.save(out, format="PNG", optimize=True)
    return out.getvalue()


def _usable_sound(path: Path) -> bool:
    """Whether the product will accept the clip (a few animals that make no noise have silent files)."""
    try:
        load_audio(path)
    except InputError:
        return False
    return True


def _write_if_changed(target: Path, data: bytes) -> None:
    if not target.exists() or target.read_bytes() != data:
        write_bytes(target, data)


def build(extracted: Path, out: Path, version: str) -> dict[str, int]:
    stamps_root = extracted / STAMPS_DIR
    if not stamps_root.is_dir():
        raise SystemExit(f"{stamps_root} does not exist: is this the {PACKAGE} package?")
    stamps = find_stamps(stamps_root)
    ids = assign_ids(stamps)
    rows, wanted, silent = [], set(), []
    for stamp, item_id in zip(stamps, ids, strict=True):
        image_rel = f"images/{item_id}.png"
        _write_if_changed(out / image_rel, render_png(stamp.image))
        wanted.add(image_rel)
        audio_rel = ""
        if stamp.sound is not None and not _usable_sound(stamp.sound):
            silent.append(item_id)
        elif stamp.sound is not None:
            audio_rel = f"sounds/{item_id}.ogg"
            _write_if_changed(out / audio_rel, stamp.sound.read_bytes())
            wanted.add(audio_rel)
        rows.append(
            {
                "id": item_id,
                "title": readable_title(stamp.stem),
                "description": stamp.description,
                "category": stamp.category,
                "image": image_rel,
                "audio": audio_rel,
                "source": (STAMPS_DIR / stamp.category / stamp.image.name).as_posix(),
            }
        )
    for sub in ("images", "sounds"):  # drop files of stamps that no longer exist (idempotent re-runs)
        for stale in sorted((out / sub).glob("*")):
            if f"{sub}/{stale.name}" not in wanted:
                stale.unlink()
    write_manifest(out, rows)
    _write_if_changed(out / "COPYRIGHT", (extracted / COPYRIGHT_FILE).read_bytes())
    counts = {
        "items": len(rows),
        "with_audio": sum(bool(r["audio"]) for r in rows),
        "categories": len({r["category"] for r in rows}),
        "from_svg": sum(s.image.suffix == ".svg" for s in stamps),
    }
    write_text(out / "README.md", _readme(version, counts, silent))
    return counts


def check_built(out: Path) -> int:
    """Load the catalogue a build script wrote, as a user would, and report its bad rows (exit status 1 if any)."""
    catalogue = load_catalogue(out)
    print(f"load_catalogue({out}): {len(catalogue)} items, {len(catalogue.bad_rows)} bad rows")
    for bad in catalogue.bad_rows[:5]:
        print(f"  {bad}")
    return 1 if catalogue.bad_rows else 0


def _readme(version: str, counts: dict[str, int], silent: list[str]) -> str:
    return f"""# Tux Paint stamps demo catalogue

{counts["items"]} clip-art stamps ({counts["with_audio"]} with a sound effect) in
{counts["categories"]} categories, from the Debian package `{PACKAGE}` version `{version}`
(upstream: Tux Paint stamps by Bill Kendrick and contributors).

Licence: GPL-2+ (GNU General Public License, version 2 or any later version); see `COPYRIGHT`,
the package's copyright file, copied as is.

Built by `python scripts/build_demo_catalogue.py` (re-running it gives the same files):

- `images/<id>.png`: the stamp image fit into {MAX_SIDE} x {MAX_SIDE} px, aspect ratio and transparency
  kept; {counts["from_svg"]} stamps are SVG drawings rendered with `rsvg-convert` (librsvg).
- `sounds/<id>.ogg`: the stamp's sound effect (`NAME.ogg`, else the English `NAME_en_GB.ogg`),
  copied unchanged. Spoken descriptions (`NAME_desc*.ogg`) are left out, and so are the sound
  files of {len(silent)} stamps that are pure silence ({", ".join(silent)}): `recsys.media`
  rejects silent clips.
- `catalogue.csv`: `id` (the stamp's file name, prefixed with its category where two stamps share
  a name), `title` (from the file name), `description` (the English line of the stamp's `.txt`),
  `category` (the folder path under `stamps/`), `image`, `audio`, and `source` (the image's path
  in the package). `NAME_mirror` drawings (the flipped view of a stamp) are not separate items.
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deb", type=Path, help=f"a {PACKAGE}_*.deb to use instead of apt-get download")
    parser.add_argument("--out", type=Path, default=REPO / "data" / "tuxpaint")
    args = parser.parse_args(argv)
    if shutil.which("rsvg-convert") is None:
        raise SystemExit("rsvg-convert is needed to render the SVG stamps: " + _INSTALL_HINTS["rsvg-convert"])
    with tempfile.TemporaryDirectory(prefix="tuxpaint-") as tmp:
        tmpdir = Path(tmp)
        deb = args.deb.resolve() if args.deb else fetch_deb(tmpdir)
        version = _run(["dpkg-deb", "-f", str(deb), "Version"]).stdout.decode().strip()
        extracted = tmpdir / "x"
        _run(["dpkg-deb", "-x", str(deb), str(extracted)])
        counts = build(extracted, args.out, version)
    print(f"{args.out}: {counts}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
