"""Build a catalogue of (sound effect, short text) pairs from openly licensed Debian packages.

Why: the demo's 234 (sound, description) pairs are too few to train the audio -> text head on;
game and desktop packages ship thousands of sound effects whose file names say what they are
(``sounds/animals/dog_bark_02.ogg`` -> "dog bark"). This turns them into a catalogue that
``python -m recsys align --extra-pairs`` and ``benchmarks/alignment.py --extra-pairs`` train on.
Nothing it writes is committed (``data/sounds/`` is git-ignored).

    python scripts/build_sound_catalogue.py                      # apt-get download into a temp dir -> data/sounds/
    python scripts/build_sound_catalogue.py --debs DIR --out /tmp/sounds   # .debs already downloaded

Packages and what is kept of each are in :data:`PACKAGES` (licence from each package's Debian
copyright file, copied into ``licenses/``). Left out on purpose: music, speech and voice clips
(per-package rules, and any clip longer than 30 s), names that say nothing (``sound042``,
``custom3``), clips whose bytes repeat an earlier clip, and every clip identical to one of the
demo catalogue's sounds (the demo clips are the test set; ``tuxpaint-stamps-default`` itself is
never read). Nothing emoji-related is used.

Writes ``catalogue.csv`` (the project's columns plus ``licence`` and ``source``: the package,
its version and the file's path in it), ``sounds/<package>/<file>``, ``LICENSES.md`` and
``licenses/<package>.copyright``, each atomically; re-running gives the same files and removes
clips no longer selected.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from recsys.catalogue import write_manifest  # noqa: E402
from recsys.errors import InputError  # noqa: E402
from recsys.media import AUDIO_EXTENSIONS, MAX_AUDIO_BYTES, load_audio  # noqa: E402
from scripts.build_demo_catalogue import _run as run_checked  # noqa: E402
from scripts.build_demo_catalogue import _write_if_changed, check_built  # noqa: E402

#: Words that name no sound: file-format, folder and numbering noise.
NOISE_WORDS = frozenset(
    {
        "audio", "clip", "custom", "data", "default", "effect", "effects", "file", "flac", "fx", "mono", "mp3",
        "misc", "new", "oga", "ogg", "sample", "sfx", "snd", "sound", "sounds", "stereo", "test",
        "untitled", "wav",
    }
)  # fmt: skip
MAX_WORDS = 6
_CAMEL = re.compile(r"(?<=[a-z])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_LETTERS = re.compile(r"[^\W\d_]+")
_VOWEL = re.compile(r"[aeiouy]")


def _words(name: str) -> list[str]:
    """Letter runs of ``name`` (camelCase split, lower-cased), noise words and single letters left out."""
    out: list[str] = []
    for word in _LETTERS.findall(_CAMEL.sub(" ", name)):
        word = word.lower()
        if len(word) > 1 and word not in NOISE_WORDS and (not out or out[-1] != word):
            out.append(word)
    return out


def _stem(name: str) -> str:
    """``default_dig_choppy.1.ogg`` -> ``default_dig_choppy``: no audio suffix, no variant number."""
    suffix = PurePosixPath(name).suffix.lower() if "." in name else ""
    if suffix in AUDIO_EXTENSIONS:
        name = name[: -len(suffix)]
    return re.sub(r"[\s._-]*\d+$", "", name)


def rename_key(path: str) -> str:
    """The key of a clip in a package's ``renames``: its lower-case stem without variant numbers."""
    parts = [p for p in path.replace("\\", "/").split("/") if p]
    return _stem(parts[-1]).lower() if parts else ""


def clip_text(path: str, renames: Mapping[str, str] | None = None) -> str | None:
    """A short text for a sound file from its name (its folder's when the name says nothing), or None.

    ``sounds/animals/dog_bark_02.ogg`` -> ``dog bark``; ``Animal/HorseGallop.wav`` -> ``horse gallop``;
    ``sounds/sfx12.wav`` -> None. ``renames`` maps a :func:`rename_key` to a text written by hand
    (abbreviations, foreign words); an empty text there drops the clip. Never raises.
    """
    parts = [p for p in str(path).replace("\\", "/").split("/") if p]
    if not parts:
        return None
    if renames and (key := rename_key(parts[-1])) in renames:
        return renames[key] or None
    for name in (_stem(parts[-1]), *(reversed(parts[-2:-1]))):
        words = _words(name)[:MAX_WORDS]
        if any(len(w) >= 3 and _VOWEL.search(w) for w in words):
            return " ".join(words)
    return None


@dataclass(frozen=True)
class Package:
    """What one Debian package gives: the audio files under ``root`` not matched by ``skip``."""

    licence: str  # of its sound files, from the package's Debian copyright file
    root: str  # folder inside the package
    skip: str = ""  # regex searched in "/" + the path under root (music, speech, voices, unnamed)
    renames: Mapping[str, str] = field(default_factory=dict)  # rename_key -> text ("" drops the clip)


#: The packages used. Speech, music and clips whose names say nothing are skipped here, after listing
#: each package's files (``dpkg-deb -c``); the generic rules of :func:`clip_text` catch the rest.
PACKAGES: dict[str, Package] = {
    "sound-theme-freedesktop": Package(
        "GPL-2+, GPL-2, CC-BY-3.0 and CC-BY-SA-3.0 (per file)",
        "usr/share/sounds/freedesktop/stereo",
        skip=r"audio-channel-|audio-test-signal",  # a voice naming the speakers; a test tone
    ),
    "yaru-theme-sound": Package("CC-BY-SA-4.0", "usr/share/sounds/Yaru/stereo"),
    "deepin-sound-theme": Package("GPL-3+", "usr/share/sounds/deepin/stereo", skip=r"x-deepin-"),
    "heroes-sound-effects": Package(
        "GPL-2+",
        "usr/share/games/heroes/sfx",
        skip=r"/(go|oh|no|ho_yeh|stop|foule\d|menu\d+|dream|lmoins|lplus|finlevel|mort_b\d|invinc)\.wav$",
        renames={"argent": "coins", "ecrase": "crash", "explo": "explosion", "claxon": "car horn"},
    ),
    "lbreakout2-data": Package(
        "GPL-2+",
        "usr/share/games/lbreakout2",
        skip=r"/(damn|dammit|excellent|verygood|wontgiveup|standard|joker|chaos)\.wav$",
        renames={"exp": "explosion", "expl_ball": "ball explosion"},
    ),
    "chromium-bsu-data": Package(
        "Expat",
        "usr/share/games/chromium-bsu/wav",
        skip=r"music_",
        renames={"explobig": "big explosion", "explopop": "explosion pop", "explostd": "explosion"},
    ),
    "sound-icons": Package(
        "GPL-2+",
        "usr/share/sounds/sound-icons",
        skip=r"/prompt\.wav$",
        renames={
            "cembalo": "harpsichord",
            "klavichord": "clavichord",
            "xylofon": "xylophone",
            "cymbaly": "cymbals",
            "pisk-down": "whistle down",
            "pisk-up": "whistle up",
            "pisk-down-cink": "whistle down clink",
            "pisk-up-cink": "whistle up clink",
            "cockchafer-gentleman": "beetle buzz",
            "gummy-cat": "squeaky toy cat",
        },
    ),
    "scratch": Package(
        "CC-BY-SA-3.0 (Media/*)",
        "usr/share/scratch/Media/Sounds",
        skip=r"^/(Music Loops|Vocals)/",  # music and singing
        renames={"dijjeridoo": "didgeridoo", "sealion": "sea lion", "afrostring": "african string instrument"},
    ),
    "tuxpaint-data": Package(
        "GPL-2+",
        "usr/share/tuxpaint/sounds",
        skip=r"/(areyousure|youcannot|tuxok|prompt|italic_on|italic_off|return|save|thick|thin|mirror|flip)\.wav$",
    ),
    "minetest-data": Package(
        "CC-BY-SA-3.0 (*.ogg; doors: CC-BY-3.0)",
        "usr/share/games/minetest/games/minetest_game/mods",
        renames={"default_dig_oddly_breakable_by_hand": "dig", "default_dig_dig_immediate": "dig"},
    ),
    "wesnoth-1.16-data": Package(
        "GPL-2+",
        "usr/share/games/wesnoth/1.16/data/core/sounds",
        renames={"ugg": "grunt", "wose-attack": "tree creature attack", "wose-die": "tree creature dies"},
    ),
    "supertux-data": Package(
        "GPL-3+",
        "usr/share/games/supertux2/sounds",
        skip=r"/(excellent|welldone|upgrade|lifeup|totem|mr_tree|mr_treehit|empty|pshit|retro_fall|invincible_start)\.",
    ),
    "lincity-ng-data": Package("GPL-2+", "usr/share/games/lincity-ng/sounds", renames={"sportscroud": "sports crowd"}),
    "hedgewars-data": Package(
        "GFDL-1.3 (Sounds/*; Droplet*: CC-BY-SA-3.0)",
        "usr/share/games/hedgewars/Data/Sounds",
        skip=r"^/voices/|/\d[A-G]\.ogg$|/(Yoohoo|hogchant|hell_|ride_of_the_valkyries|Hellish|TARDIS|homerun)",
    ),
    "marsshooter-data": Package("public-domain (data/audio/toon/*)", "usr/share/games/marsshooter/audio/toon"),
    "bzflag-data": Package(
        "LGPL-2.1 or MPL",
        "usr/share/games/bzflag",
        skip=r"/(spree\d|killteam|message_.*|hunt_select|flag_.*|thief|phantom|steamroller|burrow|hunt|teamgrab)\.wav$",
    ),
    "frozen-bubble-data": Package(
        "GPL-2",
        "usr/share/games/frozen-bubble/snd",
        skip=r"/(.*zik.*|chatted|hurry|noh|newroot.*|malus|menu_.*|lose|pause|cancel)\.ogg$",
    ),
    "extremetuxracer-data": Package("GPL-2+", "usr/share/games/etr/sounds"),
    "freeciv-data": Package(
        "GPL-2+",
        "usr/share/games/freeciv/stdsounds",
        renames={
            "lrgcan": "large cannon",
            "lrgexpl": "large explosion",
            "medcan": "cannon",
            "mgbar": "machine gun burst",
            "mgheavy": "heavy machine gun",
            "smlexpl": "small explosion",
            "thover": "hovercraft",
            "tread": "tank tracks",
            "foot": "footsteps",
            "inh2o": "splashing in water",
            "metbrk": "metal breaking",
            "woodbrk": "wood breaking",
            "wall": "wall crumbling",
            "illegal": "",
            "wakeup": "",
        },
    ),
    "pingus-data": Package("GPL-2+", "usr/share/games/pingus/data/sounds", skip=r"/(goodidea|letsgo|ohno|yipee)\.wav$"),
    "granatier": Package("GPL-2+", "usr/share/granatier/sounds", skip=r"/(wow|winlevel|joint|clear|die)\.wav$"),
    "7kaa-data": Package("GPL-2+", "usr/share/games/7kaa/SOUND"),
}
BAD_STATUS = ("undecodable or silent", "longer than 30 s (music or ambience)")


@dataclass(frozen=True)
class Clip:
    package: str
    version: str
    path: str  # inside the package
    under_root: str  # path under the package's root
    text: str
    data: bytes


def _run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    if shutil.which(cmd[0]) is None:  # the demo script's hint names its own package: say ours
        raise SystemExit(f"'{cmd[0]}' is not installed: this script needs Debian's apt-get and dpkg-deb")
    return run_checked(cmd, **kw)


def find_debs(packages: list[str], debs: Path | None, workdir: Path) -> dict[str, Path]:
    """Package -> its .deb, from ``debs`` when there, else downloaded with ``apt-get download`` into ``workdir``."""
    found = {p: sorted((debs or workdir).glob(f"{p}_*.deb")) for p in packages}
    missing = [p for p, hits in found.items() if not hits]
    if missing:
        _run(["apt-get", "download", *missing], cwd=workdir)
        found.update({p: sorted(workdir.glob(f"{p}_*.deb")) for p in missing})
    lost = [p for p, hits in found.items() if not hits]
    if lost:
        raise SystemExit(f"apt-get download produced no .deb for {', '.join(lost)} in {workdir}")
    return {p: hits[-1] for p, hits in found.items()}


def deb_members(deb: Path) -> Iterator[tuple[str, bytes]]:
    """(path without ``./``, bytes) of every regular file in a .deb's data, streamed (nothing unpacked)."""
    proc = subprocess.Popen(["dpkg-deb", "--fsys-tarfile", str(deb)], stdout=subprocess.PIPE)
    try:
        with tarfile.open(fileobj=proc.stdout, mode="r|*") as tar:
            for member in tar:
                if member.isfile():
                    handle = tar.extractfile(member)
                    yield member.name.removeprefix("./"), handle.read() if handle else b""
    except tarfile.TarError as exc:
        raise SystemExit(f"{deb.name} is not a readable .deb ({exc}); delete it and run this again") from None
    finally:
        proc.stdout.close()
        proc.wait()
    if proc.returncode != 0:  # read to the end: a truncated or damaged archive
        raise SystemExit(f"dpkg-deb could not read {deb.name} (exit {proc.returncode}); delete it and run this again")


def package_clips(package: str, spec: Package, deb: Path) -> tuple[list[Clip], bytes, Counter]:
    """The package's usable clips (in path order), its copyright file and why others were left out."""
    version = _run(["dpkg-deb", "-f", str(deb), "Version"]).stdout.decode().strip()
    root = spec.root.rstrip("/") + "/"
    skip = re.compile(spec.skip) if spec.skip else None
    copyright_path = f"usr/share/doc/{package}/copyright"
    clips, copyright_text, dropped = [], b"", Counter()
    for path, data in deb_members(deb):
        if path == copyright_path:
            copyright_text = data
        if not path.startswith(root) or PurePosixPath(path).suffix.lower() not in AUDIO_EXTENSIONS:
            continue
        under = path[len(root) :]
        if skip and skip.search("/" + under):
            dropped["speech, music or not a named effect (package rule)"] += 1
            continue
        text = clip_text(under, spec.renames)
        if text is None:
            dropped["name says nothing"] += 1
            continue
        clips.append(Clip(package, version, path, under, text, data))
    if not copyright_text:
        raise SystemExit(f"{deb.name} has no {copyright_path}: its licence cannot be checked")
    return sorted(clips, key=lambda c: c.path), copyright_text, dropped


def audio_problem(data: bytes) -> str | None:
    """Why the product would not use the clip as a sound effect (None: usable)."""
    if len(data) > MAX_AUDIO_BYTES:
        return BAD_STATUS[1]
    try:
        audio = load_audio(data)
    except InputError:
        return BAD_STATUS[0]
    return BAD_STATUS[1] if audio.note else None


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "clip"


def clip_rel(clip: Clip) -> str:
    """``sounds/<package>/<path under the root, folders joined by '-'>``, suffix kept."""
    suffix = PurePosixPath(clip.under_root).suffix.lower()
    return f"sounds/{clip.package}/{slug(clip.under_root[: -len(suffix)])}{suffix}"


def select(clips: list[Clip], excluded: set[str]) -> tuple[list[Clip], list[tuple[Clip, str]]]:
    """Drop clips identical to an excluded one (the demo's) or to an earlier one, and unusable clips."""
    kept, dropped, seen = [], [], set()
    for clip in clips:
        digest = _sha(clip.data)
        problem = (
            "identical to a demo clip"
            if digest in excluded
            else "duplicate bytes"
            if digest in seen
            else audio_problem(clip.data)
        )
        seen.add(digest)
        if problem:
            dropped.append((clip, problem))
        else:
            kept.append(clip)
    return kept, dropped


def rows_for(clips: list[Clip]) -> list[dict[str, str]]:
    rows = []
    for clip in clips:
        rel = clip_rel(clip)
        folder = PurePosixPath(clip.under_root).parent.as_posix()
        rows.append(
            {
                "id": f"{clip.package}-{PurePosixPath(rel).stem}",
                "title": clip.text[:1].upper() + clip.text[1:],
                "description": clip.text,
                "category": "/".join(["sounds", clip.package, *([slug(folder)] if folder != "." else [])]),
                "image": "",
                "audio": rel,
                "licence": PACKAGES[clip.package].licence,
                "source": f"{clip.package} {clip.version}: {clip.path}",
            }
        )
    ids = Counter(r["id"] for r in rows)
    for row in rows:  # ``mace.ogg`` beside ``mace.wav``: the suffix tells them apart
        if ids[row["id"]] > 1:
            row["id"] += "-" + PurePosixPath(row["audio"]).suffix.lstrip(".")
    dupes = [i for i, n in Counter(r["id"] for r in rows).items() if n > 1]
    if dupes:
        raise SystemExit(f"item ids collide: {dupes[:5]}")
    return rows


def licences_markdown(counts: Counter, versions: dict[str, str], dropped: dict[str, Counter]) -> str:
    lines = [
        "# Licences of this catalogue",
        "",
        "Built by `scripts/build_sound_catalogue.py` from Debian packages (`apt-get download`). Each clip is",
        "copied unchanged; its text comes from its file name. Column `licence` of `catalogue.csv` gives each",
        "clip's licence, `source` the package, its version and the file's path in it. The packages' copyright",
        "files are in `licenses/`.",
        "",
        "| package | version | licence of the sound files | clips |",
        "| --- | --- | --- | ---: |",
    ]
    for package, spec in PACKAGES.items():
        if package in versions:
            lines.append(f"| `{package}` | {versions[package]} | {spec.licence} | {counts[package]} |")
    lines += ["", "Left out, per package:", ""]
    for package, why in dropped.items():
        if why:
            lines.append(f"- `{package}`: " + ", ".join(f"{reason} {n}" for reason, n in sorted(why.items())))
    lines.append("")
    return "\n".join(lines)


def build(out: Path, debs: dict[str, Path], excluded: set[str], log=print) -> list[dict[str, str]]:
    """Write the catalogue for ``debs`` (package -> .deb) into ``out``; returns its rows."""
    every, copyrights, versions, dropped = [], {}, {}, {}
    for package, deb in debs.items():
        clips, copyright_text, why = package_clips(package, PACKAGES[package], deb)
        every += clips
        copyrights[package] = copyright_text
        versions[package] = clips[0].version if clips else ""
        dropped[package] = why
    kept, rejected = select(every, excluded)
    for clip, reason in rejected:
        dropped[clip.package][reason] += 1
    rows = rows_for(kept)
    previous = _own_previous_clips(out)
    for clip, row in zip(kept, rows, strict=True):
        _write_if_changed(out / row["audio"], clip.data)
    write_manifest(out, rows)  # first: a run killed below leaves spare files, never a row without its file
    for rel in sorted(previous - {r["audio"] for r in rows}):  # only clips an earlier run of this script wrote
        (out / rel).unlink(missing_ok=True)
        for folder in (out / rel).parents:
            if folder == out or not folder.is_dir() or any(folder.iterdir()):
                break
            folder.rmdir()
    counts = Counter(c.package for c in kept)
    _write_if_changed(out / "LICENSES.md", licences_markdown(counts, versions, dropped).encode())
    for package, data in copyrights.items():
        _write_if_changed(out / "licenses" / f"{package}.copyright", data)
    overall = Counter(reason for why in dropped.values() for reason in why.elements())
    log(f"{len(rows)} clips kept; left out: " + ", ".join(f"{k} {v}" for k, v in sorted(overall.items())))
    for package in debs:
        log(f"  {package}: {counts[package]} clips ({PACKAGES[package].licence})")
    return rows


def _own_previous_clips(out: Path) -> set[str]:
    """Clip paths an earlier run wrote into ``out``; refuses a folder this script did not make (it
    would otherwise delete files it never wrote, e.g. another catalogue's)."""
    if not out.exists() or not any(out.iterdir()):
        return set()
    licences = out / "LICENSES.md"
    ours = licences.is_file() and "scripts/build_sound_catalogue.py" in licences.read_text(errors="replace")
    if not ours:
        raise SystemExit(f"{out} is not empty and was not built by this script; choose another --out")
    manifest = out / "catalogue.csv"
    if not manifest.is_file():
        return set()
    with manifest.open(newline="", encoding="utf-8") as fh:
        return {row["audio"] for row in csv.DictReader(fh) if (row.get("audio") or "").startswith("sounds/")}


def demo_digests(folder: Path) -> set[str]:
    """sha256 of every file under ``folder`` (the demo's sounds: never a training clip here). A missing
    or empty folder is an error, not an empty set: the demo's clips would silently become training data."""
    found = sorted(p for p in folder.rglob("*") if p.is_file()) if folder.is_dir() else []
    if not found:
        raise SystemExit(f"--exclude-clips {folder}: no sound files there; point it at the demo's sounds folder")
    return {_sha(p.read_bytes()) for p in found}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "data" / "sounds", help="output (default data/sounds)")
    parser.add_argument("--debs", type=Path, help="a folder with the .debs already downloaded (others are fetched)")
    parser.add_argument(
        "--packages", help=f"comma-separated subset of the packages (default all {len(PACKAGES)})", default=None
    )
    parser.add_argument(
        "--exclude-clips",
        type=Path,
        default=REPO / "data" / "tuxpaint" / "sounds",
        help="clips identical to a file here are never used (default: the demo's sounds, the test set)",
    )
    args = parser.parse_args(argv)
    packages = [p.strip() for p in (args.packages or ",".join(PACKAGES)).split(",") if p.strip()]
    unknown = sorted(set(packages) - set(PACKAGES))
    if unknown or not packages:
        parser.error(f"--packages takes some of {', '.join(PACKAGES)}; unknown: {', '.join(unknown) or '(none)'}")
    excluded = demo_digests(args.exclude_clips)
    out = args.out.resolve()
    with tempfile.TemporaryDirectory(prefix="sound-catalogue-") as tmp:
        debs = find_debs(packages, args.debs.resolve() if args.debs else None, Path(tmp))
        build(out, debs, excluded)
    return check_built(out)


if __name__ == "__main__":
    raise SystemExit(main())
