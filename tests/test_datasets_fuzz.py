"""Property tests of the dataset loaders on generated, hostile RecBole and MMRec folders.

The property: loading (and splitting what loads) either gives a consistent dataset or raises a
:class:`~recsys.errors.RecsysError`; no other exception escapes, and nothing loaded is out of
range or non-finite. The budget comes from the Hypothesis profile (tests/conftest.py): ``ci`` by
default, ``--hypothesis-profile long`` for 10,000 examples per property.
"""

from __future__ import annotations

import contextlib
import tempfile
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recsys.datasets import FORMATS, InteractionDataset, load_dataset
from recsys.errors import RecsysError
from recsys.lab.protocols import applicable_protocols, make_split

FIELD_TYPES = ("token", "token_seq", "float", "float_seq", "int", "", "token:token")
INTER_FIELDS = ("user_id", "item_id", "rating", "timestamp", "label", "user_id", "")
ITEM_FIELDS = ("item_id", "title", "genre", "year", "item_id")
HOSTILE = (
    "",
    " ",
    "\u00a0",
    "nan",
    "inf",
    "-inf",
    "1e309",
    "-1",
    "0",
    "1000000000000",
    "0x1F",
    '"',
    '"unbalanced',
    "a\"b'c",
    "\\N",
    "NULL",
    "…!?",
    "...",
    "\u202e",
    "\ud7ff",
    "😀",
    "1.5",
    "3",
    "5",
)
# Text without tabs or newlines (they make the row structure, generated separately).
cell = st.one_of(
    st.sampled_from(HOSTILE),
    st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\t\n\r"), max_size=12),
    st.integers(-5, 40).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
)


@st.composite
def atomic_table(draw: st.DrawFn, fields: tuple[str, ...], required: str) -> str:
    """A tab-separated file: a mostly ``name:type`` header, then rows of hostile cells, ragged at times."""
    names = draw(st.lists(st.sampled_from(fields), min_size=0, max_size=5))
    if draw(st.booleans()):
        names = [required, *names]
    header = [f"{n}:{draw(st.sampled_from(FIELD_TYPES))}" if draw(st.integers(0, 5)) else n for n in names]
    n_rows = draw(st.integers(0, 12))
    token = st.one_of(st.sampled_from(("u1", "u2", "u3", "i1", "i2", "i3", "i4")), cell)
    rows = []
    for _ in range(n_rows):
        width = len(header) + draw(st.sampled_from((0, 0, 0, -1, 1)))
        rows.append("\t".join(draw(token) for _ in range(max(0, width))))
    newline = draw(st.sampled_from(("\n", "\r\n", "\n\n")))
    text = "\t".join(header) + newline + newline.join(rows) + draw(st.sampled_from(("", "\n")))
    return text


@st.composite
def raw_bytes(draw: st.DrawFn, text: str) -> bytes:
    """The text as UTF-8, sometimes with a BOM, NUL bytes, invalid bytes or a truncation."""
    data = text.encode("utf-8", "surrogatepass")
    kind = draw(st.sampled_from(("plain", "plain", "plain", "bom", "nul", "invalid", "truncate", "latin1")))
    if kind == "bom":
        data = b"\xef\xbb\xbf" + data
    elif kind == "nul":
        data = data.replace(b"\t", b"\t\x00", 1)
    elif kind == "invalid":
        data += b"\xff\xfe\x80"
    elif kind == "truncate" and data:
        data = data[: draw(st.integers(0, len(data)))]
    elif kind == "latin1":
        data = text.encode("latin-1", "replace")
    return data


@st.composite
def feature_file(draw: st.DrawFn) -> np.ndarray:
    rows = draw(st.integers(0, 6))
    cols = draw(st.integers(0, 4))
    dtype = draw(st.sampled_from((np.float32, np.float64, np.int64, np.complex64, np.bool_, "U3")))
    values = draw(st.lists(st.floats(allow_nan=True, allow_infinity=True), min_size=rows * cols, max_size=rows * cols))
    arr = np.asarray(values, dtype=np.float64).reshape(rows, cols)
    if dtype == "U3":
        return arr.astype(str).astype("U3")
    with np.errstate(invalid="ignore", over="ignore"):
        return arr.astype(dtype) if dtype is not np.int64 else np.nan_to_num(arr).clip(-9, 9).astype(dtype)


def check_consistent(ds: InteractionDataset) -> None:
    """What every loaded dataset promises the protocols and models."""
    assert ds.n_interactions > 0
    assert ds.users.min() >= 0 and ds.users.max() < ds.n_users
    assert ds.items.min() >= 0 and ds.items.max() < ds.n_items
    for name, feats in ds.item_features.items():
        assert feats.shape[0] == ds.n_items, name
        assert feats.dtype == np.float32 and np.isfinite(feats).all(), name
    for arr in (ds.timestamps, ds.ratings):
        assert arr is None or (arr.shape == ds.users.shape and np.isfinite(arr).all())


def load_and_split(folder: Path, fmt: str) -> None:
    """Load; then build each applicable split, which may refuse (too little data) but only clearly."""
    try:
        ds = load_dataset(folder, fmt)
    except RecsysError:
        return
    check_consistent(ds)
    for protocol in applicable_protocols(ds):
        with contextlib.suppress(RecsysError):
            make_split(ds, protocol, seed=0)


FUZZ = settings(suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@FUZZ
@given(data=st.data())
def test_recbole_folders_load_or_raise_recsys_error(data):
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "ds"
        folder.mkdir()
        inter = data.draw(atomic_table(INTER_FIELDS, "user_id:token"))
        if data.draw(st.booleans()):
            inter = "user_id:token\titem_id:token\n" + inter.split("\n", 1)[-1]
        (folder / "ds.inter").write_bytes(data.draw(raw_bytes(inter)))
        if data.draw(st.booleans()):
            item = data.draw(atomic_table(ITEM_FIELDS, "item_id:token"))
            (folder / "ds.item").write_bytes(data.draw(raw_bytes(item)))
        for i in range(data.draw(st.integers(0, 2))):
            np.save(folder / f"feat{i}.npy", data.draw(feature_file()))
        load_and_split(folder, "recbole")


@st.composite
def mmrec_table(draw: st.DrawFn) -> str:
    """An MMRec ``.inter`` text: ids and labels that are mostly numbers, some hostile cells."""
    number = st.sampled_from(("1000000000000", "1e3", "2.0", " 3", "4 ", "+5", "-0", "1_0", "0x1F", "True", "x"))
    ids = st.one_of(st.integers(-2, 8).map(str), number, cell)
    columns = draw(st.sampled_from((("userID", "itemID"), ("userID", "itemID", "rating", "x_label"))))
    labels = st.one_of(st.sampled_from(("0", "1", "2")), cell)
    rows = []
    for _ in range(draw(st.integers(0, 15))):
        row = [draw(ids), draw(ids)]
        if len(columns) == 4:
            row += [draw(st.one_of(st.sampled_from(("1", "0", "5", "4.5", "1e-3")), cell)), draw(labels)]
        rows.append("\t".join(row))
    return "\t".join(columns) + "\n" + "\n".join(rows) + "\n"


@FUZZ
@given(data=st.data())
def test_mmrec_folders_load_or_raise_recsys_error(data):
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "ds"
        folder.mkdir()
        (folder / "ds.inter").write_bytes(data.draw(raw_bytes(data.draw(mmrec_table()))))
        for i in range(data.draw(st.integers(0, 2))):
            np.save(folder / f"feat{i}.npy", data.draw(feature_file()))
        load_and_split(folder, "mmrec")


def loaded(folder: Path, fmt: str) -> InteractionDataset | str:
    try:
        return load_dataset(folder, fmt)
    except RecsysError as exc:
        return str(exc)


def same_value(a: object, b: object) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and a.dtype == b.dtype and np.array_equal(a, b)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same_value(a[k], b[k]) for k in a)
    return a == b


@FUZZ
@given(data=st.data(), fmt=st.sampled_from(FORMATS))
def test_the_fast_reader_loads_what_the_line_by_line_reader_does(data, fmt):
    """Every file gives the same dataset, or the same error, with or without pandas' C parser."""
    text = data.draw(mmrec_table() if fmt == "mmrec" else atomic_table(INTER_FIELDS, "user_id:token"))
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "ds"
        folder.mkdir()
        (folder / "ds.inter").write_bytes(data.draw(raw_bytes(text)))
        fast = loaded(folder, fmt)
        with mock.patch("recsys.datasets._read_regular_table", return_value=None):
            strict = loaded(folder, fmt)
    assert type(fast) is type(strict), (fast, strict)
    if isinstance(fast, str):
        assert fast == strict
    else:
        for name in fast.__dataclass_fields__:
            assert same_value(getattr(fast, name), getattr(strict, name)), name


@FUZZ
@given(
    n_users=st.integers(1, 6),
    n_items=st.integers(1, 6),
    pairs=st.lists(st.tuples(st.integers(0, 5), st.integers(0, 5), st.integers(0, 5)), min_size=1, max_size=30),
    punctuation=st.booleans(),
)
def test_well_formed_recbole_files_always_load(n_users, n_items, pairs, punctuation):
    """Valid files load (or the item text alone is refused), and the tokens map back exactly."""
    rows = [(f"u{u % n_users}", f"i{i % n_items}", r) for u, i, r in pairs]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "ds"
        folder.mkdir()
        lines = ["user_id:token\titem_id:token\trating:float"] + [f"{u}\t{i}\t{r}" for u, i, r in rows]
        (folder / "ds.inter").write_text("\n".join(lines) + "\n")
        title = "!?" if punctuation else "song"
        items = "\n".join(f"i{i}\t{title} {i if not punctuation else ''}" for i in range(n_items))
        (folder / "ds.item").write_text("item_id:token\ttitle:token_seq\n" + items + "\n")
        try:
            ds = load_dataset(folder, "recbole")
        except RecsysError as exc:
            assert punctuation and "no words" in str(exc) or all(r == 0 for _, _, r in rows)
            return
        check_consistent(ds)
        kept = [(u, i) for u, i, r in rows if r > 0]
        got = [(ds.user_tokens[u], ds.item_tokens[i]) for u, i in zip(ds.users, ds.items, strict=True)]
        assert got == kept


@FUZZ
@given(
    cells=st.lists(
        st.builds(
            "{}{}{}".format,
            st.sampled_from(["", " ", "\u00a0", "\x1f", "\u3000 "]),
            st.sampled_from(["", "u1", "u2", "ü", "a b"]),
            st.sampled_from(["", " ", "\x0b", "\u2029"]),
        ),
        min_size=1,
        max_size=40,
    )
)
def test_token_indices_are_those_of_every_cell_stripped(cells):
    """Tokens indexed as written, then stripped and merged, are every cell stripped and then indexed:
    the same indices, tokens in order of first appearance, and the first empty one's line refused."""
    import pandas as pd

    from recsys.datasets import _token_codes

    stripped = [cell.strip() for cell in cells]
    frame = pd.DataFrame({"user_id:token": cells}, dtype=object)
    if "" in stripped:
        with pytest.raises(RecsysError, match=f"ds.inter line {stripped.index('') + 2}: empty user_id"):
            _token_codes(frame, "user_id:token", Path("ds.inter"))
        return
    codes, tokens = _token_codes(frame, "user_id:token", Path("ds.inter"))
    expected_codes, expected_tokens = pd.factorize(pd.Series(stripped, dtype=object))
    assert codes.tolist() == expected_codes.tolist()
    assert list(tokens) == list(expected_tokens)
