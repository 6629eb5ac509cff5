"""The on-disk catalogue format: what a user's own catalogue looks like, and how it is validated.

A catalogue is a folder holding a manifest, ``catalogue.csv`` (UTF-8, comma-separated, header
row) or ``catalogue.parquet`` (not both), plus the media files it points to::

    my-catalogue/
        catalogue.csv
        images/owl.png
        sounds/owl.ogg

Columns, in any order; only ``id`` is required, and a column left out is an empty one (a catalogue
of product photos needs no ``audio`` column); a cell may be empty:

- ``id``: unique, non-empty item id (kept as text: ``007`` stays ``007``);
- ``title``, ``description``: free text; the text encoder sees ``"title. description"``;
- ``category``: a ``/``-separated path such as ``animals/birds`` (may be empty; outer and repeated
  slashes are dropped, at most 1,024 characters and 32 levels);
- ``image``, ``audio``: paths *relative to the catalogue folder*, ``/``-separated; empty when the
  item has no such medium. Images: PNG, JPEG, WebP, GIF or BMP; audio: WAV, OGG, FLAC or MP3
  (limits in :mod:`recsys.media`).

Any other column is kept, as text, in ``Item.extra`` (e.g. ``price``, ``url``, ``source``).

Every row is validated; a bad row is skipped and reported as a :class:`BadRow` (line number in
the CSV -- the header is line 1 -- or 1-based row number in a Parquet file) while the good rows
load. A row is bad when its id is empty, longer than 1,024 characters or repeats an earlier row's,
when its category is longer than 1,024 characters or 32 levels, when it has no title,
description, image or audio at all, when a media path is absolute or leads outside the folder
(``..``, or a symlink pointing outside), or when a media file is missing, unreadable, oversized
or undecodable (images are opened and verified with PIL, audio headers probed with soundfile --
cheap checks, not a full decode; see :mod:`recsys.media` for what indexing does with files that
pass them and still fail to decode), when a media path is a folder, FIFO, symlink loop, holds a
NUL byte or a name over 255 bytes, when a cell is longer than ``MAX_CELL_CHARS``, or when a quoted
cell swallows lines that look like rows (an unbalanced quote: the line range is reported).
:func:`load_catalogue` raises :class:`CatalogueError` when there is no manifest, it is over
``MAX_MANIFEST_BYTES``, two columns share a name, ``id`` is missing, none of ``title``,
``description``, ``image`` and ``audio`` is there, a column the product reads is missing while
another column looks like it misspelt (``Image``, ``images``), or no row is valid.
"""

from __future__ import annotations

import csv
import difflib
import hashlib
import io
import json
import operator
import os
import re
import stat
from array import array
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path, PurePath
from typing import TYPE_CHECKING

import numpy as np

from recsys.atomic import write_bytes
from recsys.catalogue.categories import category_cell, category_prefixes
from recsys.catalogue.checks import NO_STAMP, CheckCache, StampRows, stamp
from recsys.collector import collector_paused
from recsys.errors import CatalogueError, InputError
from recsys.paths import file_problem, mode_problem
from recsys.threads import check_processes
from recsys.workers import map_in_processes

if TYPE_CHECKING:
    import pandas as pd

MANIFEST_NAMES = ("catalogue.csv", "catalogue.parquet")
#: A manifest larger than this is refused before it is read (it is read whole into memory).
MAX_MANIFEST_BYTES = 1024 * 1024 * 1024
#: Media files to check on a load from which they are checked in worker processes (starting them
#: costs ~0.1-0.2 s; one check ~35-50 us).
PARALLEL_CHECKS_FROM = 20_000
CHECK_CHUNK = 256  # files a worker checks per task
#: A longer cell makes its row bad (the text encoder reads a few hundred words at most).
MAX_CELL_CHARS = 65_536
#: Longest item id: what every vector store keeps (Milvus' primary key is a VARCHAR of bounded length).
MAX_ID_LENGTH = 1024
#: The columns the product reads, in the order it writes them; only ``id`` is required.
COLUMNS = ("id", "title", "description", "category", "image", "audio")
REQUIRED_COLUMNS = ("id",)
CONTENT_COLUMNS = ("title", "description", "image", "audio")  # a row needs one of these filled
MEDIA_COLUMNS = ("image", "audio")
#: A row's media cell naming no file (empty); from ``REFUSED`` down, a cell refused before its file was opened.
NO_FILE, REFUSED = -1, -2
_FIELD = r'(?:"(?:[^"]|"")*"|[^,"\r\n]*)'
_WELL_FORMED_LINE = re.compile(f"{_FIELD}(?:,{_FIELD})*")
_PLAIN_NAME = r"(?!\.\.?(?:/|\Z))[^/\\\0]+"  # a file or folder name other than . and ..
#: A media cell :class:`_MediaLocator` takes the short way: relative, plain names, no drive letter.
_PLAIN_REFERENCE = re.compile(f"(?!.:){_PLAIN_NAME}(?:/{_PLAIN_NAME})*", re.DOTALL)
MODALITIES = ("text", "image", "audio")
#: Whether a ``Path`` keeps its string in a ``_str`` slot, filled on first ``str()`` (Python 3.11-3.13).
_PATH_KEEPS_STR = "_str" in getattr(PurePath, "__slots__", ())


def id_problem(item_id: str) -> str | None:
    """Why every vector store could not keep the item id ``item_id`` (a non-empty string), or None:
    the loader reports such a row, a store refuses such an id (a trailing NUL was lost by the
    embedded store's string arrays, so ``a\\0`` came back as ``a``)."""
    if len(item_id) > MAX_ID_LENGTH:
        return f"the id is {len(item_id):,} characters; the limit is {MAX_ID_LENGTH:,}"
    if "\0" in item_id:
        return "the id contains a NUL character"
    return None


@dataclass(frozen=True, init=False)
class Item:
    """One catalogue item; ``image`` / ``audio`` are absolute paths (``None`` when absent)."""

    id: str
    title: str
    description: str
    category: str
    image: Path | None
    audio: Path | None
    extra: dict = field(default_factory=dict, hash=False)  # items stay hashable (usable in sets)

    def __init__(
        self,
        id: str,  # noqa: A002 (the field's name)
        title: str,
        description: str,
        category: str,
        image: Path | None,
        audio: Path | None,
        extra: dict | None = None,
    ) -> None:
        # Written into the instance's dict: a frozen dataclass's own __init__ sets each field through
        # object.__setattr__, 2.3 s of a 1M-item catalogue load against 0.9 s this way.
        fields_ = self.__dict__
        fields_["id"], fields_["title"], fields_["description"], fields_["category"] = id, title, description, category
        fields_["image"], fields_["audio"], fields_["extra"] = image, audio, {} if extra is None else extra

    @property
    def text(self) -> str:
        """What the text encoder sees: ``"title. description"``, or whichever of the two is present."""
        title, desc = self.title.strip(), self.description.strip()
        if title and desc:
            return f"{title}{'' if title[-1] in '.!?:' else '.'} {desc}"
        return title or desc


@dataclass(frozen=True)
class BadRow:
    """A manifest row that was skipped: its line (CSV) or row number (Parquet), id and why."""

    line: int
    id: str | None
    reason: str

    def __str__(self) -> str:
        who = f" (id '{self.id}')" if self.id else ""
        return f"line {self.line}{who}: {self.reason}"


class Catalogue:
    """The valid items of a catalogue folder, in manifest order, plus the rows that were skipped."""

    def __init__(
        self,
        root: Path,
        items: list[Item],
        bad_rows: list[BadRow],
        fingerprint: str = "",
        file_stamps: Mapping[str, np.ndarray] | None = None,
    ) -> None:
        self.root = Path(root)
        self.items = list(items)
        self.bad_rows = list(bad_rows)
        self._file_stamps = dict(file_stamps or {})
        self._index = {item.id: i for i, item in enumerate(self.items)}
        if len(self._index) != len(self.items):
            raise CatalogueError("Catalogue items must have unique ids.")
        self._given_fingerprint = fingerprint

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self) -> Iterator[Item]:
        return iter(self.items)

    def __repr__(self) -> str:
        return f"Catalogue({str(self.root)!r}, {len(self.items)} items, {len(self.bad_rows)} bad rows)"

    @property
    def ids(self) -> list[str]:
        return [item.id for item in self.items]

    def __contains__(self, item_id: object) -> bool:
        return item_id in self._index

    def index_of(self, item_id: str) -> int:
        """Position of ``item_id``; an unknown id raises :class:`InputError` suggesting close ids."""
        try:
            return self._index[item_id]
        except KeyError:
            close = difflib.get_close_matches(str(item_id), list(self._index), n=3, cutoff=0.6)
            hint = (
                "did you mean " + ", ".join(f"'{c}'" for c in close) + "?"
                if close
                else f"the catalogue has {len(self)} items, e.g. " + ", ".join(f"'{i}'" for i in self.ids[:3]) + "."
            )
            raise InputError(f"unknown item id '{item_id}'; {hint}") from None

    def rows_of(self, item_ids: Sequence[str]) -> np.ndarray:
        """Positions of ``item_ids`` in one C-level lookup (a search's hits, on the query path);
        an unknown id raises as :meth:`index_of` does."""
        if not item_ids:
            return np.zeros(0, dtype=np.int64)
        try:
            found = operator.itemgetter(*item_ids)(self._index)
        except KeyError:
            return np.array([self.index_of(i) for i in item_ids], dtype=np.int64)
        return np.array(found if len(item_ids) > 1 else [found], dtype=np.int64)

    def rows_or_missing(self, item_ids: Iterable[str]) -> np.ndarray:
        """Positions of ``item_ids``, -1 for an id the catalogue lacks: another numbering of items
        (a vector store's rows) mapped onto this one once."""
        position = self._index.get
        return np.fromiter((position(i, -1) for i in item_ids), dtype=np.int64)

    def item(self, item_id: str) -> Item:
        return self.items[self.index_of(item_id)]

    def find(self, text: str, limit: int = 200) -> list[str]:
        """Ids of the first ``limit`` items (in catalogue order) whose title or id contains ``text``,
        ignoring case: how a person picks one item out of a catalogue too large to list."""
        needle = " ".join(str(text).split()).casefold()
        if limit <= 0:
            return []
        if not needle:
            return self.ids[:limit]
        out = []
        for item_id, key in zip(self._index, self._search_keys, strict=True):
            if needle in key:
                out.append(item_id)
                if len(out) >= limit:
                    break
        return out

    @cached_property
    def _search_keys(self) -> list[str]:
        return [" ".join(f"{item.title} {item.id}".split()).casefold() for item in self.items]

    @cached_property
    def categories(self) -> list[str]:
        """Sorted unique (full-path) categories; items without one are not counted. Kept, as a pass
        over every item: each rerun of the app's pages asks for them."""
        return sorted({item.category for item in self.items if item.category})

    @cached_property
    def category_paths(self) -> list[str]:
        """Every category and each of its ancestors (``animals`` and ``animals/birds``), sorted: what a
        category filter may name."""
        return sorted({path for category in self.categories for path in category_prefixes(category)})

    @property
    def top_categories(self) -> list[str]:
        """Sorted unique first segments of the category paths (``animals`` for ``animals/birds``)."""
        return sorted({category.split("/", 1)[0] for category in self.categories})

    def has_modality(self, modality: str) -> np.ndarray:
        """Boolean mask over items: which have ``"text"``, ``"image"`` or ``"audio"``."""
        if modality == "text":  # what Item.text is non-empty for, without joining the two
            return np.array([bool(item.title.strip() or item.description.strip()) for item in self.items], dtype=bool)
        if modality in MEDIA_COLUMNS:
            return np.array([getattr(item, modality) is not None for item in self.items], dtype=bool)
        raise InputError(f"unknown modality '{modality}'; use one of {', '.join(MODALITIES)}.")

    def file_stamps(self, modality: str) -> np.ndarray | None:
        """Each item's ``modality`` file stamp (:mod:`recsys.stamps`) as the load read it, one row
        per item (-1 where it has none); None when not known (a catalogue not made by a load)."""
        stamps = self._file_stamps.get(modality)
        return stamps if stamps is not None and len(stamps) == len(self.items) else None

    @cached_property
    def fingerprint(self) -> str:
        """sha256 over the items as manifest rows: changes when an item is added, removed or edited.
        Computed when first asked for (~4 us an item, which every load of a large catalogue paid)."""
        return self._given_fingerprint or _fingerprint([_item_row(self.root, it) for it in self.items])

    def to_frame(self) -> pd.DataFrame:
        """One row per item with the manifest columns (media paths relative, as in the manifest) + extras."""
        import pandas as pd

        rows = [_item_row(self.root, item) for item in self.items]
        return pd.DataFrame(rows, columns=_column_order(rows))


def _relative(root: Path, path: Path | None) -> str:
    if path is None:
        return ""
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.as_posix()


def _item_row(root: Path, item: Item) -> dict[str, str]:
    row = {
        "id": item.id,
        "title": item.title,
        "description": item.description,
        "category": item.category,
        "image": _relative(root, item.image),
        "audio": _relative(root, item.audio),
    }
    row.update({str(k): str(v) for k, v in item.extra.items()})
    return row


def _column_order(rows: list[dict]) -> list[str]:
    extra: dict[str, None] = {}
    for row in rows:
        extra.update({k: None for k in row if k not in COLUMNS})
    return [*COLUMNS, *extra]


def _fingerprint(rows: list[dict[str, str]]) -> str:
    digest = hashlib.sha256()
    for row in rows:
        digest.update(json.dumps(row, sort_keys=True, ensure_ascii=False).encode("utf-8"))
        digest.update(b"\n")
    return digest.hexdigest()


def _cell(value: object) -> str:
    """Manifest cell as stripped text; missing / NaN / None become ``""``."""
    if value is None:
        return ""
    if isinstance(value, float | np.floating):
        if value != value:  # NaN
            return ""
        if float(value).is_integer():  # pandas turns int columns with gaps into floats: 7.0 -> "7"
            return str(int(value))
    return str(value).strip()


def _find_manifest(path: Path) -> Path:
    if path.is_file():
        if path.name not in MANIFEST_NAMES:
            raise CatalogueError(f"'{path}' is not a catalogue manifest; name it {' or '.join(MANIFEST_NAMES)}.")
        return path
    if not path.is_dir():
        raise CatalogueError(f"Catalogue folder '{path}' does not exist.")
    found = [path / name for name in MANIFEST_NAMES if (path / name).is_file()]
    if not found:
        raise CatalogueError(
            f"No manifest in '{path}': add a {' or '.join(MANIFEST_NAMES)} with columns "
            f"id and any of {', '.join(COLUMNS[1:])} (see data/README.md)."
        )
    if len(found) > 1:
        raise CatalogueError(f"'{path}' has both {' and '.join(MANIFEST_NAMES)}; keep only one.")
    return found[0]


def _read_rows(manifest: Path) -> tuple[list[str], list[tuple[int, int, dict[str, str], str | None]]]:
    """(columns, [(line, last line, row, problem)]) from a CSV or Parquet manifest; ``problem`` flags
    malformed rows. A CSV row with multi-line cells spans ``line`` to ``last line``. The header is
    checked first (:func:`_header_absent`); every row holds the columns it leaves out, empty."""
    if manifest.suffix == ".parquet":
        import pandas as pd

        try:
            frame = pd.read_parquet(manifest)
        except Exception as exc:
            raise CatalogueError(f"Cannot read '{manifest}' as Parquet ({exc}).") from exc
        columns = [str(c).strip() for c in frame.columns]
        blank = dict.fromkeys(_header_absent(manifest, columns), "")
        records = frame.to_dict(orient="records")
        return columns, [
            (n, n, {**{str(k).strip(): _cell(v) for k, v in rec.items()}, **blank}, None)
            for n, rec in enumerate(records, start=1)
        ]
    size = manifest.stat().st_size
    if size > MAX_MANIFEST_BYTES:
        raise CatalogueError(f"'{manifest}' is {size:,} bytes; the limit is {MAX_MANIFEST_BYTES:,}.")
    try:
        with open(manifest, encoding="utf-8-sig", newline="") as fh:  # newline="": a quoted "\r" stays itself
            text = fh.read()
    except UnicodeDecodeError as exc:
        raise CatalogueError(f"'{manifest}' is not UTF-8 text; save it as UTF-8 CSV.") from exc
    lines: list[str] | None = None  # as the reader counts them (\n, \r\n or \r): made for a row spanning lines
    reader = csv.reader(io.StringIO(text, newline=""))
    limit = csv.field_size_limit(max(MAX_CELL_CHARS, len(text)) + 1)  # long cells are reported per row
    try:
        header = next(reader, None)
        if header is None:
            raise CatalogueError(f"'{manifest}' is empty; it needs a header row such as {','.join(COLUMNS)}.")
        columns = [c.strip() for c in header]
        absent = _header_absent(manifest, columns)
        names, blanks = columns + absent, [""] * len(absent)  # a row's dict made whole at once
        rows = []
        prev_end = reader.line_num
        width = len(columns)
        for cells in reader:
            line, prev_end = prev_end + 1, reader.line_num
            joined = "".join(cells)
            if not joined.strip():
                continue  # blank line
            more_lines: list[str] = []
            if prev_end > line:  # a row spanning lines: the lines after its first
                lines = lines if lines is not None else io.StringIO(text, newline="").readlines()
                more_lines = lines[line:prev_end]
            problem = None
            # no cell is longer than the row's cells together: a short one-line row needs no more checks
            if more_lines or len(cells) > width or len(joined) > MAX_CELL_CHARS:
                problem = _row_problem(cells, columns, line, more_lines)
            if len(cells) < width:
                cells += [""] * (width - len(cells))
            cells[width:] = blanks  # cells past the header's (reported above) make way for the absent columns
            rows.append((line, prev_end, dict(zip(names, map(str.strip, cells), strict=True)), problem))
    except csv.Error as exc:
        raise CatalogueError(f"'{manifest}' is not valid CSV (line {reader.line_num}: {exc}).") from exc
    finally:
        csv.field_size_limit(limit)
    return columns, rows


def _row_problem(cells: list[str], columns: list[str], first: int, more_lines: list[str]) -> str | None:
    """Why a parsed CSV row (starting on line ``first``, continued on ``more_lines``) cannot be trusted:
    more fields than columns, a cell over the length limit, or a quoted cell that swallowed lines which
    look like rows of their own (an unbalanced quote)."""
    if not more_lines and len(cells) <= len(columns) and max(map(len, cells), default=0) <= MAX_CELL_CHARS:
        return None  # the common row, at a fraction of the checks' cost
    problems = []
    if len(cells) > len(columns):
        problems.append(f"{len(cells)} fields but the header has {len(columns)} columns (an unquoted comma?)")
    for column, cell in zip(columns, cells, strict=False):
        if len(cell) > MAX_CELL_CHARS:
            problems.append(f"{column or 'a cell'} is {len(cell):,} characters; the limit is {MAX_CELL_CHARS:,}")
    swallowed = any(_looks_like_row(line, columns) or _starts_like_row(line, columns) for line in more_lines)
    if len(columns) > 1 and swallowed:
        where = next((c for c, cell in zip(columns, cells, strict=False) if "\n" in cell or "\r" in cell), "a cell")
        problems.append(
            f"an unbalanced quote in {where} swallows lines {first + 1}-{first + len(more_lines)}, which look "
            'like rows of their own; close the quote, or write a quote inside a cell as ""'
        )
    return "; ".join(problems) or None


def _looks_like_row(line: str, columns: list[str]) -> bool:
    """Whether one physical line inside a multi-line record is a well-formed row of its own: every
    field either fully quoted or free of quotes (the line that closes a legitimate multi-line cell
    is not), as many fields as the header, and an id where the header has its id column."""
    line = line.rstrip("\r\n")
    if not _WELL_FORMED_LINE.fullmatch(line):
        return False
    fields = next(csv.reader([line]), [])
    key = columns.index("id") if "id" in columns else 0
    return len(fields) == len(columns) and bool(fields[key].strip())


def _starts_like_row(line: str, columns: list[str]) -> bool:
    """Whether a line inside a multi-line record begins like a row of its own whose quoted cell took
    the quote that ends the swallowing: unquoted fields (with an id) up to a lone quote that starts a
    field (a quote that closes a cell is followed by a comma or the end of the line; an escaped one
    by another quote)."""
    line = line.rstrip("\r\n")
    quote = line.find('"')
    if quote < 1 or line[quote - 1] != "," or line[quote + 1 : quote + 2] in ("", ",", '"'):
        return False
    fields = line[:quote].split(",")[:-1]
    key = columns.index("id") if "id" in columns else 0
    return len(fields) < len(columns) and (key >= len(fields) or bool(fields[key].strip()))


class _MediaLocator:
    """Turns a manifest's media cells into paths inside the catalogue folder, cheaply.

    A path never leads outside the catalogue folder: absolute paths are refused, and the resolved
    path (``..`` and every symlink followed) must lie inside the resolved folder. Resolving every
    path (``Path.resolve`` stats each component) was half of a load's time, so the folder is
    resolved once, each distinct parent folder once, and a file itself only when ``lstat`` says it
    is a symlink: the real path of ``parent/name`` is ``realpath(parent)/name`` when ``name`` is
    not a link. A file that is not a symlink gets its ``lstat`` reused as its ``stat``.
    """

    def __init__(self, root: Path) -> None:
        self._root = str(root)
        self._root_prefix = os.path.join(self._root, "")
        self._real_root = str(root.resolve())
        self._inside_prefix = self._real_root.rstrip(os.sep) + os.sep
        self._real_dirs: dict[str, str | None] = {}
        # a plain cell's folder -> (what makes the path of a file in it, the folder's real path)
        self._plain_dirs: dict[str, tuple[Callable[[str], Path], str | None]] = {}

    def locate(self, rel: str, column: str) -> tuple[Path | None, str | None, os.stat_result | None]:
        """(absolute path, None, its stat) for a valid media reference, (None, None, None) for an
        empty cell, else (None, reason, None)."""
        if not rel:
            return None, None, None
        if os.sep == "/" and _PLAIN_REFERENCE.fullmatch(rel):
            found = self._locate_plain(rel)
            if found is not None:
                return found
        if "\0" in rel:
            return None, f"{column} path '{_shown(rel)}' contains a NUL byte", None
        posix = rel.replace("\\", "/")
        if posix.startswith("/") or os.path.isabs(rel) or (len(rel) > 1 and rel[1] == ":"):
            return None, f"{column} path '{_shown(rel)}' is absolute; use a path relative to the catalogue folder", None
        parts = [part for part in posix.split("/") if part and part != "."]  # as PurePosixPath(posix).parts
        path = os.path.join(self._root, *parts)
        resolved, info = self._resolve(path, parts[-1] if parts else ".")
        if resolved is not None and resolved != self._real_root and not resolved.startswith(self._inside_prefix):
            how = "a symlink pointing" if ".." not in parts else "'..' leading"
            return None, f"{column} path '{_shown(rel)}' is outside the catalogue folder ({how} outside it)", None
        problem = file_problem(path) if info is None else mode_problem(info.st_mode)
        if problem is None and info is None:
            try:
                info = os.stat(path)
            except OSError as exc:  # gone since file_problem looked
                problem = f"cannot be used ({exc.strerror or exc})"
        if problem == "does not exist":
            return None, f"{column} file '{_shown(rel)}' not found", None
        if problem is not None or resolved is None:
            return None, f"{column} path '{_shown(rel)}' {problem or 'cannot be resolved'}", None
        return Path(path), None, info

    def _locate_plain(self, rel: str) -> tuple[Path, None, os.stat_result] | None:
        """:meth:`locate` of the common cell, a relative path of plain names (``images/0001/cat.png``)
        naming a regular file that is not a symlink, in a third of the time; None for any other file.

        Why: at 1M items the general path (splitting, joining, building a ``Path`` from a string) was
        most of a catalogue load. Here the path is the root's plus the cell, the folder's real path
        and ``Path`` are made once per folder, and the item's path is that ``Path`` / its name."""
        path = self._root_prefix + rel
        try:
            info = os.lstat(path)
        except (OSError, ValueError):
            return None  # missing, a loop, a name too long...: the general path says which
        if not stat.S_ISREG(info.st_mode):
            return None  # a symlink to follow, or not a file: the general path says which
        folder, _, name = rel.rpartition("/")
        known = self._plain_dirs.get(folder)
        if known is None:
            parent = os.path.dirname(path)
            if parent not in self._real_dirs:
                self._real_dirs[parent] = _real(parent)
            parent_path = Path(parent)
            # a child of plain name without parsing it (2.6 against 0.6 us: ~2 s of a 1M-item load);
            # pathlib's own shortcut for walking folders, where this Python has it
            child = getattr(parent_path, "_make_child_relpath", parent_path.joinpath)
            known = self._plain_dirs[folder] = (child, self._real_dirs[parent])
        child, real_parent = known
        if real_parent is None or not (real_parent + os.sep).startswith(self._inside_prefix):
            return None  # a folder on the way is a symlink leading outside: the general path says so
        located = child(name)
        if _PATH_KEEPS_STR:  # the string it stands for, already made (as Python 3.12's shortcut keeps it):
            located._str = path  # its first str() then costs nothing (~2.7 s of the content keys at 1M items)
        return located, None, info

    def _resolve(self, path: str, name: str) -> tuple[str | None, os.stat_result | None]:
        """(real path or None when it cannot be resolved, the file's stat when it is no symlink)."""
        if name not in ("..", "."):
            try:
                info = os.lstat(path)
            except (OSError, ValueError):
                info = None  # missing, a loop, a name too long...: the slow path says which
            if info is not None and not stat.S_ISLNK(info.st_mode):
                parent = os.path.dirname(path)
                if parent not in self._real_dirs:
                    self._real_dirs[parent] = _real(parent)
                real_parent = self._real_dirs[parent]
                return (None if real_parent is None else os.path.join(real_parent, name)), info
        return _real(path), None


def _real(path: str) -> str | None:
    """``path`` with ``..`` and every symlink resolved; None for a symlink loop or a name too long."""
    try:
        return str(Path(path).resolve())
    except (OSError, RuntimeError, ValueError):
        return None


def _shown(text: str, limit: int = 80) -> str:
    """A cell as messages quote it: NUL bytes visible, at most ``limit`` characters."""
    text = text.replace("\0", "\\0")
    return text if len(text) <= limit else f"{text[: limit // 2]}...{text[-(limit // 2 - 3):]}"


def _check(job: tuple[tuple[str, str], Path]) -> str | None:
    """:func:`_validate_media` of one gathered check ((column, cell), path)."""
    (column, rel), path = job
    return _validate_media(path, column, rel)


def _validate_media(path: Path, column: str, rel: str) -> str | None:
    from recsys import media

    check = media.check_image_file if column == "image" else media.check_audio_file
    try:
        check(path)
    except InputError as exc:
        message = str(exc).replace(f"'{path}'", f"'{rel}'").rstrip(".")
        return message[:1].lower() + message[1:]
    except OSError as exc:
        return f"{column} file '{rel}' cannot be read ({exc.strerror or exc})"
    return None


def _refuse_duplicate_columns(manifest: Path, columns: list[str]) -> None:
    """Two columns of one name would silently let the last win; name them (1-based) instead."""
    seen: dict[str, list[int]] = {}
    for position, name in enumerate(columns, start=1):
        if name:  # empty names (trailing commas from spreadsheets) are ignored columns
            seen.setdefault(name, []).append(position)
    twice = {name: where for name, where in seen.items() if len(where) > 1}
    if twice:
        shown = "; ".join(f"'{name}' in columns {', '.join(map(str, where))}" for name, where in twice.items())
        raise CatalogueError(f"'{manifest.name}' has duplicate column names: {shown}; rename or remove the copies.")


def _header_absent(manifest: Path, columns: list[str]) -> list[str]:
    """The product's columns a manifest's header leaves out, once the header is found sound."""
    _refuse_duplicate_columns(manifest, columns)
    return _absent_columns(manifest, columns)


def _absent_columns(manifest: Path, columns: list[str]) -> list[str]:
    """The product's columns the header leaves out (read as empty), refusing a header that cannot
    hold a valid row and one whose left-out column looks misspelt in another: ``Image`` or
    ``images`` for ``image`` would otherwise load a catalogue with no pictures, silently."""
    for column in REQUIRED_COLUMNS:
        if column not in columns:
            raise CatalogueError(
                f"'{manifest.name}' has no '{column}' column; every catalogue needs one (see data/README.md)."
            )
    if not any(c in columns for c in CONTENT_COLUMNS):
        raise CatalogueError(
            f"'{manifest.name}' has none of the columns {', '.join(CONTENT_COLUMNS)}: an item needs at least one."
        )
    absent = [c for c in COLUMNS if c not in columns]
    unknown = {c.lower(): c for c in columns if c and c not in COLUMNS}  # lowered -> as written
    for column in absent:
        same = [name for lowered, name in unknown.items() if lowered.strip("_ -") == column]
        close = difflib.get_close_matches(column, list(unknown), n=1, cutoff=0.75)
        name = same[0] if same else unknown[close[0]] if close else None
        if name is not None:
            raise CatalogueError(
                f"'{manifest.name}' has no '{column}' column but has '{name}': if that column is meant, "
                f"rename it to '{column}' (column names are case-sensitive and exact)."
            )
    return absent


@collector_paused()
def load_catalogue(path: str | os.PathLike[str], *, cache_dir: str | os.PathLike[str] | None = None) -> Catalogue:
    """Load and validate a catalogue folder (or its manifest file); bad rows are skipped and reported.

    With ``cache_dir`` (the embedding cache folder), the verdict on each media file is remembered
    there (:mod:`recsys.catalogue.checks`): a later load stats every file but opens only those that
    changed. The rows loaded and the reasons reported are the same as without it.
    """
    manifest = _find_manifest(Path(path))
    root = manifest.parent.absolute()
    columns, rows = _read_rows(manifest)
    locator = _MediaLocator(root)
    cache = CheckCache.open(cache_dir, root.resolve()) if cache_dir is not None else None
    # First pass: every check but opening the media files, which are gathered (once per file) to run together.
    parsed: list[tuple[int, int, dict[str, str], list[str]]] = []
    # Each media file referenced, once: its number (per column, by cell), key, path and stamp (at 1M
    # files, keeping each one's stat result instead cost ~500 MB more at the peak of a start).
    numbers: dict[str, dict[str, int]] = {column: {} for column in MEDIA_COLUMNS}
    file_keys: list[tuple[str, str]] = []
    file_paths: list[Path] = []
    file_stamps = StampRows()
    # Each row's media, per column: its file's number, NO_FILE for an empty cell, or REFUSED - k
    # for a cell refused before any file was opened, refusals[k] saying why. Arrays, not two dicts a
    # row: with them a 1M-row load peaked ~0.5 GB higher and took seconds longer (docs/START.md).
    file_of = {column: array("q") for column in MEDIA_COLUMNS}
    refusals: list[str] = []
    first_line: dict[str, int] = {}
    content_of = operator.itemgetter(*CONTENT_COLUMNS)  # a row's content cells, in one C call
    # each distinct category cell's (category, None) or (None, why it is refused): a catalogue has far
    # fewer categories than rows (the message, not the exception, whose traceback would hold this frame)
    categories: dict[str, tuple[str, None] | tuple[None, str]] = {}
    for line, last, row, problem in rows:
        item_id = row["id"]
        reasons = [problem] if problem else []
        if not item_id:
            reasons.append("empty id")
        elif (bad_id := id_problem(item_id)) is not None:
            reasons.append(bad_id)
        elif item_id in first_line:
            reasons.append(f"duplicate id '{item_id}' (first used on line {first_line[item_id]})")
        if not any(content_of(row)):
            reasons.append("no title, description, image or audio")
        known = categories.get(cell := row["category"])
        if known is None:
            try:
                known = categories[cell] = (category_cell(cell), None)
            except InputError as exc:
                known = categories[cell] = (None, str(exc))
        category, refused = known
        if refused is None:
            row["category"] = category
        else:
            reasons.append(refused)
        for column in MEDIA_COLUMNS:
            rel = row[column]
            number = numbers[column].get(rel)
            if number is None:  # a file not seen yet (a row sharing one reuses its path and stamp)
                path, refused, info = locator.locate(rel, column)
                if info is not None:
                    number = numbers[column][rel] = len(file_paths)
                    file_keys.append((column, rel))
                    file_paths.append(path)  # type: ignore[arg-type]
                    file_stamps.add(stamp(info))
                elif refused is not None:
                    number = REFUSED - len(refusals)
                    refusals.append(refused)
                else:
                    number = NO_FILE
            file_of[column].append(number)
        if item_id and item_id not in first_line:
            first_line[item_id] = line
        parsed.append((line, last, row, reasons))
    stamps = file_stamps.rows()
    verdicts: list[str | None] = [None] * len(file_keys)  # each file's problem, None when it passed
    to_check = range(len(file_keys))
    if cache is not None:  # a remembered verdict of an unchanged file
        known = cache.lookup_many(file_keys, stamps)
        to_check = [number for number, verdict in enumerate(known) if verdict is None]
        for number, verdict in enumerate(known):
            verdicts[number] = verdict or None
    checks = [(file_keys[number], file_paths[number]) for number in to_check]
    # Processes, not threads: the checks hold the GIL most of the time (on 2 cores 2 threads took
    # 2.8-4.2 s for data/large where 1 took 2.4-2.5 s); worker processes pay for starting only past
    # PARALLEL_CHECKS_FROM files (benchmarks/catalogue_load.py).
    processes = check_processes() if len(checks) >= PARALLEL_CHECKS_FROM else 1
    if processes > 1:
        from recsys import media  # noqa: F401  (imported once here, before the workers fork, not in each)
    found = map_in_processes(_check, checks, processes, CHECK_CHUNK)
    for number, verdict in zip(to_check, found, strict=True):
        verdicts[number] = verdict
        if cache is not None:
            cache.remember(*file_keys[number], stamps[number], verdict)
    if cache is not None:
        cache.save()
    items: list[Item] = []
    bad: list[BadRow] = []
    kept = array("q")  # the rows that became items
    extra_columns = [c for c in columns if c and c not in COLUMNS]  # kept with each item, in the manifest's order
    for index, (line, last, row, reasons) in enumerate(parsed):
        for column in MEDIA_COLUMNS:
            number = file_of[column][index]
            reason = verdicts[number] if number >= 0 else refusals[REFUSED - number] if number <= REFUSED else None
            if reason:
                reasons.append(reason)
        if reasons:
            if last > line and not any("swallows lines" in r for r in reasons):
                reasons.append(f"the row spans lines {line}-{last}")  # so that no line goes unaccounted for
            bad.append(BadRow(line=line, id=row["id"] or None, reason="; ".join(reasons)))
            continue
        kept.append(index)
        image, audio = file_of["image"][index], file_of["audio"][index]
        items.append(
            Item(
                id=row["id"],
                title=row["title"],
                description=row["description"],
                category=row["category"],
                image=file_paths[image] if image >= 0 else None,
                audio=file_paths[audio] if audio >= 0 else None,
                extra={k: row[k] for k in extra_columns} if extra_columns else {},
            )
        )
    if not items:
        shown = "; ".join(str(b) for b in bad[:3]) or "the manifest has no data rows"
        raise CatalogueError(f"No valid rows in '{manifest}': {shown}.")
    by_column = {}  # kept for the content keys, which then need not stat every file again
    rows_kept = np.frombuffer(kept, dtype=np.int64)
    for column, per_row in file_of.items():
        file_numbers = np.frombuffer(per_row, dtype=np.int64)[rows_kept]  # NO_FILE or a file: kept rows refused none
        if (file_numbers >= 0).any():
            by_column[column] = np.where((file_numbers >= 0)[:, None], stamps[np.maximum(file_numbers, 0)], NO_STAMP)
    return Catalogue(root, items, bad, file_stamps=by_column)


def write_manifest(root: str | os.PathLike[str], rows: list[dict] | pd.DataFrame, *, fmt: str = "csv") -> Path:
    """Write ``catalogue.csv`` (or ``.parquet``) into ``root`` atomically; missing columns are left empty.

    Columns come out as the required ones first, then extras in order of first appearance, so the
    file is byte-identical for identical rows (the demo build relies on it).
    """
    import pandas as pd

    records = rows.to_dict(orient="records") if isinstance(rows, pd.DataFrame) else list(rows)
    # A bare carriage return is not quoted by CSV writers ending lines with "\n", and splits the row when
    # read back: written as a newline, which is quoted.
    clean = [{str(k): _cell(v).replace("\r\n", "\n").replace("\r", "\n") for k, v in rec.items()} for rec in records]
    columns = _column_order(clean)
    frame = pd.DataFrame([{c: row.get(c, "") for c in columns} for row in clean], columns=columns, dtype=object)
    target = Path(root) / f"catalogue.{fmt}"
    if fmt == "csv":
        data = frame.to_csv(index=False, lineterminator="\n").encode("utf-8")
    elif fmt == "parquet":
        buf = io.BytesIO()
        frame.to_parquet(buf, index=False)
        data = buf.getvalue()
    else:
        raise ValueError(f"fmt must be 'csv' or 'parquet', not {fmt!r}")
    return write_bytes(target, data)
