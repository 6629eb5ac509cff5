"""Interaction datasets: MMRec and RecBole atomic-file loaders with validation.

Both formats load into one :class:`InteractionDataset` (contiguous user and item indices, one
row per interaction, optional timestamps and given split labels, per-modality item features), so
protocols and models never see the on-disk format. Every problem a user can cause by pointing at
the wrong folder or a damaged file raises :class:`~recsys.errors.DatasetError` naming the file,
the column or the line.
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recsys.errors import DatasetError
from recsys.paths import UnreadableText, read_utf8

#: MMRec's ``x_label`` values.
TRAIN, VALID, TEST = 0, 1, 2
SPLIT_NAMES = {TRAIN: "train", VALID: "valid", TEST: "test"}
#: The columns each format's loader reads as numbers (RecBole: by field name, whatever its type).
MMREC_NUMBERS = frozenset({"userID", "itemID", "rating", "x_label", "timestamp"})
RECBOLE_NUMBERS = frozenset({"rating", "timestamp"})
FORMATS = ("mmrec", "recbole")
#: MMRec ids are indices (0..n-1): a few gaps are fine, but an id this far beyond the number of
#: distinct ids is a raw id (say 10^12) that would allocate gigabytes per user and item.
MIN_ID_LIMIT = 1_000_000
ID_SLACK = 10

# Substrings of a feature file's name that reveal its modality (checked in order).
_KIND_HINTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("audio", ("vggish", "whisper", "audio", "clap", "mfcc", "musicnn", "openl3", "wav2vec", "aisfx")),
    ("image", ("clip", "image", "vit", "resnet", "efficientnet", "visual", "img")),
    ("text", ("minilm", "mpnet", "bert", "sentence", "text", "tfidf", "word2vec", "glove", "e5", "bge")),
)


def modality_kind(name: str) -> str:
    """Guess ``audio``/``image``/``text`` from a feature name (``other`` when unknown)."""
    low = name.lower()
    for kind, hints in _KIND_HINTS:
        if any(h in low for h in hints):
            return kind
    return "other"


@dataclass
class InteractionDataset:
    """Users x items interactions plus item content, independent of the on-disk format.

    ``users``/``items`` hold one contiguous index per interaction; ``split`` holds the dataset's
    own split label per interaction (:data:`TRAIN`/:data:`VALID`/:data:`TEST`) when it has one.
    """

    name: str
    n_users: int
    n_items: int
    users: np.ndarray
    items: np.ndarray
    timestamps: np.ndarray | None = None
    ratings: np.ndarray | None = None  # one per interaction when the file has a rating column
    split: np.ndarray | None = None
    item_features: dict[str, np.ndarray] = field(default_factory=dict)
    modality_kinds: dict[str, str] = field(default_factory=dict)
    item_names: list[str] | None = None
    user_tokens: list[str] | None = None
    item_tokens: list[str] | None = None
    source: str = ""

    @property
    def n_interactions(self) -> int:
        return int(self.users.shape[0])

    @property
    def modalities(self) -> list[str]:
        return list(self.item_features)

    def matrix(self, mask: np.ndarray | None = None) -> sp.csr_matrix:
        """Binary users x items CSR matrix of the interactions selected by ``mask`` (all if None)."""
        users, items = (self.users, self.items) if mask is None else (self.users[mask], self.items[mask])
        m = sp.csr_matrix((np.ones(len(users), dtype=np.float32), (users, items)), shape=(self.n_users, self.n_items))
        m.sum_duplicates()
        m.data[:] = 1.0
        return m

    def summary(self) -> dict[str, object]:
        out: dict[str, object] = {
            "name": self.name,
            "users": self.n_users,
            "items": self.n_items,
            "interactions": self.n_interactions,
            "density": self.n_interactions / max(1, self.n_users * self.n_items),
            "modalities": {
                m: [int(self.item_features[m].shape[1]), self.modality_kinds.get(m, "other")]
                for m in self.item_features
            },
            "timestamps": self.timestamps is not None,
        }
        if self.ratings is not None:
            out["ratings"] = [float(self.ratings.min()), float(self.ratings.max())]
        if self.split is not None:
            out["given_split"] = {SPLIT_NAMES[k]: int((self.split == k).sum()) for k in SPLIT_NAMES}
        return out


def load_dataset(path: str | Path, fmt: str = "mmrec", name: str | None = None) -> InteractionDataset:
    """Load the dataset in folder ``path`` stored as ``fmt`` (``mmrec`` or ``recbole``)."""
    loaders = {"mmrec": load_mmrec, "recbole": load_recbole}
    if fmt not in loaders:
        raise DatasetError(f"Unknown dataset format {fmt!r}; use one of: {', '.join(FORMATS)}.")
    try:
        return loaders[fmt](path, name)
    except OSError as exc:  # a name too long, a folder that vanished, no permission: the path, not a bug
        raise DatasetError(f"Cannot read dataset {path}: {exc.strerror or exc}.") from exc


# ----------------------------------------------------------------------------------------- helpers


def _not_a_file(path: Path) -> DatasetError:
    return DatasetError(f"{path} is a folder or a special file, not an interaction or item file.")


def _find_inter(folder: Path, name: str | None) -> Path:
    if not folder.is_dir():
        raise DatasetError(f"Dataset folder {folder} does not exist or is not a folder.")
    if name is not None:
        path = folder / f"{name}.inter"
        if path.exists() and not path.is_file():
            raise _not_a_file(path)
        if not path.is_file():
            raise DatasetError(f"No interaction file {path.name} in {folder}.")
        return path
    found = sorted(folder.glob("*.inter"))
    candidates = [c for c in found if c.is_file()]
    if found and not candidates:
        raise _not_a_file(found[0])
    if not candidates:
        raise DatasetError(f"No .inter interaction file in {folder}; is this an MMRec or RecBole dataset folder?")
    for c in candidates:  # MMRec and RecBole both name the main file after the folder
        if c.stem == folder.name:
            return c
    if len(candidates) == 1:
        return candidates[0]
    raise DatasetError(
        f"Several .inter files in {folder} ({', '.join(c.name for c in candidates)}) and none is named "
        f"{folder.name}.inter; pass the dataset name explicitly."
    )


def _read_table(path: Path, numeric: Callable[[str], bool] = lambda column: False) -> pd.DataFrame:
    """A tab-separated file with a header as a frame, strictly: every row has the header's fields.

    Columns named by ``numeric`` may come back as float64 (see :func:`_numeric`), the others are
    strings. A file whose every line has the header's width, in UTF-8 with ``\\n`` line ends, is read
    by pandas' C parser, numbers included (``benchmarks/dataset_load.py``: at 5M rows a fourteenth of
    the time, a quarter of the memory); any other file, or one whose numbers that parser refuses,
    goes through :func:`_read_table_strictly`, which says what is wrong where.
    """
    frame = _read_regular_table(path, numeric)
    return frame if frame is not None else _read_table_strictly(path)


#: What pandas' C parser takes for booleans wherever they appear (a token containing one only costs the fast way).
_BOOLEAN_WORDS = (b"True", b"TRUE", b"true", b"False", b"FALSE", b"false")


def _read_regular_table(path: Path, numeric: Callable[[str], bool]) -> pd.DataFrame | None:
    """The fast way of :func:`_read_table`, or None wherever it could read the file otherwise than the strict one."""
    try:
        data = path.read_bytes()
        data.decode("utf-8-sig")
    except (OSError, UnicodeDecodeError):
        return None
    data = data.removeprefix(codecs.BOM_UTF8).rstrip(b"\n")
    if not data or b"\r" in data or b"\x00" in data:
        return None
    raw = np.frombuffer(data, dtype=np.uint8)
    ends = np.flatnonzero(raw == ord("\n"))
    tabs_before = np.searchsorted(np.flatnonzero(raw == ord("\t")), np.append(ends, raw.size))
    per_line = np.diff(tabs_before, prepend=0)
    width = int(per_line[0]) + 1
    header = data[: ends[0] if ends.size else raw.size].decode("utf-8").split("\t")
    if width < 2 or (per_line != width - 1).any() or "" in header or len(set(header)) < width:
        return None  # a short, long or empty line, an unnamed or repeated column: the strict reader's words
    numbers = [column for column in header if numeric(column)]
    if numbers and any(word in data for word in _BOOLEAN_WORDS):
        return None  # pandas' C parser reads them as 1 and 0 in a numeric column, the strict reader refuses them
    dtypes = {column: np.float64 if column in numbers else object for column in header}
    options = {"sep": "\t", "quoting": csv.QUOTE_NONE, "na_filter": False}
    try:
        frame = pd.read_csv(io.BytesIO(data), dtype=dtypes, index_col=False, engine="c", **options)
    except (ValueError, pd.errors.ParserError):
        return None  # a number the C parser refuses, perhaps one the strict reader takes (" 5\xa0")
    return frame if list(frame.columns) == header and len(frame) == ends.size else None


def _read_table_strictly(path: Path) -> pd.DataFrame:
    """:func:`_read_table` line by line, every column as strings.

    By hand rather than by ``pd.read_csv``, which turns a row with extra fields into an index and
    pads short rows with NaN: both gave silently wrong tokens. Row ``i`` of the frame is line
    ``i + 2`` of the file (blank lines are allowed only at its end), as the error messages assume.
    """
    try:
        text = read_utf8(path, "utf-8-sig")
    except UnreadableText as exc:
        if exc.os_error is not None:
            error = exc.os_error
            raise DatasetError(f"{path}: cannot read the file ({error.strerror or error}).") from exc
        raise DatasetError(f"{path.name} line {exc.line}: not UTF-8 text (byte {exc.byte:#04x}).") from exc
    lines = [line.removesuffix("\r") for line in text.split("\n")]
    while lines and not lines[-1]:
        lines.pop()
    if not lines:
        raise DatasetError(f"{path.name}: the file is empty; expected a tab-separated header and rows.")
    header = lines[0].split("\t")
    if not lines[0].strip():
        raise DatasetError(f"{path.name} line 1: expected the header, found an empty line.")
    repeated = sorted({h for h in header if header.count(h) > 1})
    if repeated:
        raise DatasetError(f"{path.name} line 1: the header repeats column(s) {', '.join(map(repr, repeated))}.")
    width = len(header)
    rows = []
    for number, line in enumerate(lines[1:], start=2):
        fields = line.split("\t")
        while len(fields) > width and fields[-1] == "":  # trailing tabs
            fields.pop()
        if len(fields) != width:
            what = "an empty line" if not line else f"{len(fields)} field(s)"
            raise DatasetError(
                f"{path.name} line {number}: {what}, but the header has {width} "
                "(fields are separated by tabs; a value cannot hold a tab or a line break)."
            )
        rows.append(fields)
    return pd.DataFrame(rows, columns=header, dtype=object) if rows else pd.DataFrame(columns=header, dtype=object)


def _numeric(df: pd.DataFrame, column: str, path: Path, integer: bool) -> np.ndarray:
    """One column's numbers (parsed here, or by the C parser of :func:`_read_table`), checked; the
    first bad row is reported by its line number in the file and its text as written."""
    parsed = df[column].dtype == np.float64
    raw = None if parsed else df[column].str.strip()
    if raw is None:
        as_float = df[column].to_numpy(dtype=np.float64)
    else:
        as_float = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    bad = ~np.isfinite(as_float)
    if integer:  # past 2**53 a float64 no longer tells neighbouring integers apart: ids would merge
        whole = np.nan_to_num(as_float)
        bad = bad | (whole % 1 != 0) | (np.abs(whole) >= 2**53)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        if raw is None:  # the text as written, for the message
            raw = _read_table_strictly(path)[column].str.strip()
        raise DatasetError(
            f"{path.name} line {row + 2}: column {column!r} has {raw.iloc[row]!r}, expected "
            f"{'an integer below 2**53' if integer else 'a number'} ({int(bad.sum())} bad row(s) in all)."
        )
    return as_float.astype(np.int64) if integer else as_float


def _require(df: pd.DataFrame, columns: list[str], path: Path) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise DatasetError(
            f"{path.name} lacks column(s) {', '.join(missing)}; found: {', '.join(map(str, df.columns))}."
        )


#: Bytes of features checked for finiteness at a time: the check's temporaries stay this small.
FINITE_CHECK_BYTES = 64 << 20


def _non_finite_rows(arr: np.ndarray) -> np.ndarray:
    """The rows of a 2-D float array holding a NaN or an infinity, a block of rows at a time (the
    whole array's boolean mask was a quarter of its size more at the peak of a load)."""
    step = max(1, FINITE_CHECK_BYTES // max(1, arr.shape[1] * arr.itemsize))
    starts = range(0, len(arr), step)
    bad = [start + np.flatnonzero(~np.isfinite(arr[start : start + step]).all(axis=1)) for start in starts]
    return np.concatenate(bad) if bad else np.zeros(0, dtype=np.int64)


def _load_features(folder: Path, n_items: int | None) -> dict[str, np.ndarray]:
    feats: dict[str, np.ndarray] = {}
    for path in sorted(folder.glob("*.npy")):
        try:
            arr = np.load(path, allow_pickle=False)
        except (ValueError, OSError) as exc:
            raise DatasetError(f"Feature file {path.name} is not a readable .npy array ({exc}).") from exc
        if arr.ndim != 2 or arr.shape[0] == 0 or arr.shape[1] == 0:
            raise DatasetError(f"Feature file {path.name} has shape {arr.shape}; expected (n_items, dim).")
        if arr.dtype.kind not in "biuf":  # complex values would be cast to their real part without a word
            raise DatasetError(f"Feature file {path.name} holds {arr.dtype} values; expected real numbers.")
        with np.errstate(over="ignore"):  # past float32's range becomes infinite, refused below
            arr = arr.astype(np.float32, copy=False)  # a float32 file (the usual) is not copied
        bad = _non_finite_rows(arr)
        if bad.size:
            raise DatasetError(
                f"Feature file {path.name} has NaN, infinite or out-of-range (past float32) values in "
                f"{bad.size} row(s) (first: item {int(bad[0])})."
            )
        feats[path.stem] = arr
    rows = {m: a.shape[0] for m, a in feats.items()}
    if len(set(rows.values())) > 1:
        raise DatasetError(f"Feature files disagree on the number of items: {rows}.")
    if n_items is not None and feats and next(iter(rows.values())) != n_items:
        raise DatasetError(f"Feature files have {next(iter(rows.values()))} rows but the dataset has {n_items} items.")
    return feats


def _check_index_range(ids: np.ndarray, column: str, path: Path) -> None:
    """Refuse ids far beyond the number of distinct ids before anything is sized by them."""
    if ids.max() < MIN_ID_LIMIT:  # within the floor whatever the count: no need to count distinct ids
        return
    distinct = len(np.unique(ids))
    if ids.max() >= max(MIN_ID_LIMIT, ID_SLACK * distinct):
        row = int(np.argmax(ids))
        raise DatasetError(
            f"{path.name} line {row + 2}: {column} {int(ids[row])} is far beyond the {distinct} "
            f"distinct ids; MMRec ids must be indices 0..n-1 (raw ids belong in the RecBole format, which "
            "remaps them)."
        )


def _validate_split(split: np.ndarray, path: Path) -> None:
    unknown = ~np.isin(split, list(SPLIT_NAMES))
    if unknown.any():
        row = int(np.flatnonzero(unknown)[0])
        raise DatasetError(
            f"{path.name} line {row + 2}: x_label {int(split[row])} is not 0 (train), 1 (valid) or 2 (test)."
        )
    for label in (TRAIN, TEST):
        if not (split == label).any():
            raise DatasetError(
                f"{path.name}: the given split has no {SPLIT_NAMES[label]} interactions (x_label={label})."
            )


# ------------------------------------------------------------------------------------------ MMRec


def load_mmrec(path: str | Path, name: str | None = None) -> InteractionDataset:
    """MMRec layout: ``<name>.inter`` (``userID itemID [rating] [x_label] [timestamp]``) + ``*.npy`` features.

    Ids are already contiguous indices; the item count is the feature matrices' row count when
    there are features (items nobody interacted with still exist), else the largest item id + 1.
    """
    folder = Path(path)
    inter = _find_inter(folder, name)
    df = _read_table(inter, MMREC_NUMBERS.__contains__)
    _require(df, ["userID", "itemID"], inter)
    if df.empty:
        raise DatasetError(f"{inter.name} has a header but no interactions.")
    users = _numeric(df, "userID", inter, integer=True)
    items = _numeric(df, "itemID", inter, integer=True)
    for col, ids in (("userID", users), ("itemID", items)):
        if (ids < 0).any():
            row = int(np.flatnonzero(ids < 0)[0])
            raise DatasetError(f"{inter.name} line {row + 2}: negative {col} {int(ids[row])}.")
        _check_index_range(ids, col, inter)
    keep = np.ones(len(df), dtype=bool)
    ratings = None
    if "rating" in df.columns:  # MMRec keeps only positives; a zero rating is not an interaction
        ratings = _numeric(df, "rating", inter, integer=False)
        keep = ratings > 0
    split = _numeric(df, "x_label", inter, integer=True) if "x_label" in df.columns else None
    stamps = _numeric(df, "timestamp", inter, integer=False) if "timestamp" in df.columns else None

    feats = _load_features(folder, None)
    n_items = next(iter(feats.values())).shape[0] if feats else int(items.max()) + 1
    if items.max() >= n_items:
        row = int(np.argmax(items))
        raise DatasetError(
            f"{inter.name} line {row + 2}: itemID {int(items[row])} is out of range; the feature files have "
            f"{n_items} rows, so item ids must be 0..{n_items - 1}."
        )
    users, items = users[keep], items[keep]
    split = split[keep] if split is not None else None
    stamps = stamps[keep] if stamps is not None else None
    ratings = ratings[keep] if ratings is not None else None
    if len(users) == 0:
        raise DatasetError(f"{inter.name} has no positive interactions (every rating is 0).")
    if split is not None:
        _validate_split(split, inter)
    return InteractionDataset(
        name=inter.stem,
        n_users=int(users.max()) + 1,
        n_items=n_items,
        users=users,
        items=items,
        timestamps=stamps,
        ratings=ratings,
        split=split,
        item_features=feats,
        modality_kinds={m: modality_kind(m) for m in feats},
        source=str(folder),
    )


# ---------------------------------------------------------------------------------------- RecBole


def _recbole_columns(df: pd.DataFrame, path: Path) -> dict[str, tuple[str, str]]:
    """Map field name -> (original header, type) for RecBole ``name:type`` headers."""
    out: dict[str, tuple[str, str]] = {}
    for col in df.columns:
        field_name, sep, ftype = str(col).partition(":")
        if not sep or ftype not in ("token", "token_seq", "float", "float_seq"):
            raise DatasetError(
                f"{path.name}: header {col!r} is not a RecBole 'name:type' field "
                "(type one of token, token_seq, float, float_seq)."
            )
        out[field_name] = (str(col), ftype)
    return out


def _text_features(texts: list[str], path: Path, seed: int = 0, max_dim: int = 128) -> np.ndarray:
    """TF-IDF of the items' text reduced by SVD: lets content models run on RecBole datasets."""
    from sklearn.decomposition import TruncatedSVD
    from sklearn.feature_extraction.text import TfidfVectorizer

    try:
        tfidf = TfidfVectorizer(min_df=1, token_pattern=r"(?u)\b\w+\b").fit_transform(texts)
    except ValueError as exc:  # sklearn: "empty vocabulary" when no item text holds a word
        raise DatasetError(
            f"{path.name}: the item text columns hold no words (only punctuation or spaces), so no text "
            "features can be built; fix the text or remove its columns."
        ) from exc
    dim = min(max_dim, tfidf.shape[0] - 1, tfidf.shape[1] - 1)
    if dim < 2:
        return tfidf.toarray().astype(np.float32)
    return TruncatedSVD(n_components=dim, random_state=seed).fit_transform(tfidf).astype(np.float32)


def _token_codes(df: pd.DataFrame, header: str, path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(each row's index, the tokens in order of first appearance) of a token column, each token
    stripped of surrounding whitespace; an empty one is refused with its line.

    The cells are indexed as written and only the distinct ones stripped (merging those that then
    coincide): stripping and comparing every cell was 6 s of a 5M-row load (``benchmarks/dataset_load.py``).
    """
    codes, written = pd.factorize(df[header].to_numpy(dtype=object))
    stripped = np.array([token.strip() for token in written], dtype=object)
    empty = stripped == ""
    if empty.any():
        row = int(np.flatnonzero(empty[codes])[0])
        raise DatasetError(f"{path.name} line {row + 2}: empty {header.partition(':')[0]}.")
    merged, tokens = pd.factorize(stripped)  # a stripped token first appears with its first variant
    return (codes if tokens.size == written.size else merged[codes]), tokens


def load_recbole(path: str | Path, name: str | None = None) -> InteractionDataset:
    """RecBole atomic files: ``<name>.inter`` with ``user_id:token item_id:token`` (+ rating, timestamp).

    Raw tokens become contiguous indices in order of first appearance. An optional ``<name>.item``
    adds items (possibly never interacted with), their names (first ``token_seq`` text column) and
    a ``tfidf`` text modality from its text columns; ``*.npy`` files in the folder are used as
    features when their row count equals the item count (rows in index order).
    """
    folder = Path(path)
    inter = _find_inter(folder, name)
    df = _read_table(inter, lambda header: header.partition(":")[0] in RECBOLE_NUMBERS)
    fields = _recbole_columns(df, inter)
    missing = [f for f in ("user_id", "item_id") if f not in fields]
    if missing:
        raise DatasetError(
            f"{inter.name} lacks field(s) {', '.join(f + ':token' for f in missing)}; "
            f"found: {', '.join(map(str, df.columns))}."
        )
    if df.empty:
        raise DatasetError(f"{inter.name} has a header but no interactions.")
    user_codes, user_tokens = _token_codes(df, fields["user_id"][0], inter)
    item_codes, item_uniques = _token_codes(df, fields["item_id"][0], inter)
    keep = np.ones(len(df), dtype=bool)
    ratings = None
    if "rating" in fields:
        ratings = _numeric(df, fields["rating"][0], inter, integer=False)
        keep = ratings > 0
    stamps = _numeric(df, fields["timestamp"][0], inter, integer=False) if "timestamp" in fields else None

    item_tokens = list(item_uniques)
    item_names: list[str] | None = None
    texts: list[str] | None = None

    item_path = inter.with_suffix(".item")
    if item_path.exists() and not item_path.is_file():
        raise _not_a_file(item_path)
    if item_path.is_file():
        idf = _read_table(item_path)
        ifields = _recbole_columns(idf, item_path)
        if "item_id" not in ifields:
            raise DatasetError(f"{item_path.name} lacks the item_id:token field.")
        idf_ids = idf[ifields["item_id"][0]].str.strip()
        dup = idf_ids.duplicated().to_numpy()
        if dup.any():
            raise DatasetError(
                f"{item_path.name} line {int(np.flatnonzero(dup)[0]) + 2}: duplicate item_id {idf_ids[dup].iloc[0]!r}."
            )
        known = set(item_tokens)
        item_tokens += [t for t in idf_ids if t not in known]
        text_cols = [h for f, (h, t) in ifields.items() if f != "item_id" and t in ("token_seq", "token")]
        if text_cols:
            by_id = idf.set_index(idf_ids)
            name_col = next((h for f, (h, t) in ifields.items() if t == "token_seq"), text_cols[0])
            names = by_id[name_col].reindex(item_tokens).fillna("")
            item_names = [str(n) for n in names]
            cells = by_id[text_cols].reindex(item_tokens).fillna("")
            # each item's cells joined in column order, in one pass (a row-wise agg called pandas per row)
            texts = [" ".join(map(str, row)) for row in zip(*(cells[c] for c in text_cols), strict=True)]

    users, items = user_codes.astype(np.int64)[keep], item_codes.astype(np.int64)[keep]
    stamps = stamps[keep] if stamps is not None else None
    ratings = ratings[keep] if ratings is not None else None
    if len(users) == 0:
        raise DatasetError(f"{inter.name} has no positive interactions (every rating is 0).")
    n_items = len(item_tokens)
    feats = _load_features(folder, n_items)
    if texts is not None and any(t.strip() for t in texts) and "tfidf" not in feats:
        feats["tfidf"] = _text_features(texts, item_path)
    return InteractionDataset(
        name=inter.stem,
        n_users=len(user_tokens),
        n_items=n_items,
        users=users,
        items=items,
        timestamps=stamps,
        ratings=ratings,
        split=None,
        item_features=feats,
        modality_kinds={m: modality_kind(m) for m in feats},
        item_names=item_names,
        user_tokens=[str(u) for u in user_tokens],
        item_tokens=item_tokens,
        source=str(folder),
    )
