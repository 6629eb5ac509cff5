"""Dataset loaders: the good path and every malformed file a user can point at."""

from __future__ import annotations

from pathlib import Path
from unittest import mock

import numpy as np
import pytest

from recsys.datasets import TEST, TRAIN, VALID, load_dataset, modality_kind
from recsys.errors import DatasetError

GOOD_INTER = "userID\titemID\trating\tx_label\n0\t0\t1\t0\n0\t1\t1\t1\n0\t2\t1\t2\n1\t2\t1\t0\n1\t3\t1\t2\n"


def write_mmrec(folder: Path, inter: str = GOOD_INTER, n_items: int = 4, feats: dict | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{folder.name}.inter").write_text(inter)
    if feats is None:
        rng = np.random.default_rng(0)
        feats = {"vggish": rng.normal(size=(n_items, 3)), "all-MiniLM-L6-v2": rng.normal(size=(n_items, 5))}
    for name, arr in feats.items():
        np.save(folder / f"{name}.npy", arr)
    return folder


def test_mmrec_loads(tmp_path):
    ds = load_dataset(write_mmrec(tmp_path / "toy"), "mmrec")
    assert (ds.n_users, ds.n_items, ds.n_interactions) == (2, 4, 5)
    np.testing.assert_array_equal(ds.split, [TRAIN, VALID, TEST, TRAIN, TEST])
    assert ds.item_features["vggish"].dtype == np.float32
    assert ds.modality_kinds == {"all-MiniLM-L6-v2": "text", "vggish": "audio"}
    m = ds.matrix(ds.split == TRAIN)
    assert m.shape == (2, 4) and m.nnz == 2


def test_mmrec_picks_the_file_named_after_the_folder(tmp_path):
    folder = write_mmrec(tmp_path / "toy")
    (folder / "toy_og_ids.inter").write_text("userID\titemID\n9\t9\n")
    assert load_dataset(folder).n_interactions == 5


def test_modality_kind_guesses():
    assert modality_kind("whisper") == "audio"
    assert modality_kind("clip-vit-b32") == "image"
    assert modality_kind("mystery") == "other"


@pytest.mark.parametrize(
    ("inter", "message"),
    [
        ("userID\trating\n0\t1\n", "lacks column(s) itemID"),
        ("userID\titemID\trating\tx_label\n0\t0\t1\t0\n0\tabc\t1\t2\n", "line 3: column 'itemID' has 'abc'"),
        ("userID\titemID\trating\tx_label\n0\t0\t1\t0\n0\t1.5\t1\t2\n", "line 3"),
        ("userID\titemID\trating\tx_label\n0\t0\t1\t0\n-1\t1\t1\t2\n", "negative userID"),
        ("userID\titemID\trating\tx_label\n0\t0\t1\t0\n0\t7\t1\t2\n", "itemID 7 is out of range"),
        ("userID\titemID\trating\tx_label\n0\t0\t1\t0\n0\t1\t1\t1\n", "no test interactions"),
        ("userID\titemID\trating\tx_label\n0\t0\t1\t0\n0\t1\t1\t5\n", "x_label 5"),
        ("userID\titemID\trating\tx_label\n", "no interactions"),
        ("userID\titemID\trating\tx_label\n0\t0\t1\n", "line 2"),
        ("userID\titemID\trating\tx_label\n0\t0\t1\t0\n1e300\t1\t1\t2\n", "line 3: column 'userID' has '1e300'"),
        ("userID\titemID\trating\tx_label\n0\t0\t1\t0\n0\t9007199254740993\t1\t2\n", "an integer below 2"),
    ],
)
def test_mmrec_malformed_inter(tmp_path, inter, message):
    with pytest.raises(DatasetError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_dataset(write_mmrec(tmp_path / "toy", inter), "mmrec")


def test_mmrec_feature_problems(tmp_path):
    rng = np.random.default_rng(0)
    with pytest.raises(DatasetError, match="disagree"):
        load_dataset(write_mmrec(tmp_path / "a", feats={"x": rng.normal(size=(4, 2)), "y": rng.normal(size=(5, 2))}))
    bad = rng.normal(size=(4, 2))
    bad[2, 1] = np.nan
    with pytest.raises(DatasetError, match="NaN.*item 2"):
        load_dataset(write_mmrec(tmp_path / "b", feats={"x": bad}))
    with pytest.raises(DatasetError, match="shape"):
        load_dataset(write_mmrec(tmp_path / "c", feats={"x": np.zeros(4)}))
    folder = write_mmrec(tmp_path / "d", feats={})
    (folder / "broken.npy").write_bytes(b"not numpy")
    with pytest.raises(DatasetError, match="broken.npy"):
        load_dataset(folder)
    complex_values = rng.normal(size=(4, 2)) + 1j  # would silently lose its imaginary part
    with pytest.raises(DatasetError, match="complex128 values; expected real numbers"):
        load_dataset(write_mmrec(tmp_path / "e", feats={"x": complex_values}))


def test_non_finite_features_are_found_a_block_at_a_time(tmp_path, monkeypatch):
    """Every bad row is counted and the first named whichever block holds it; float32 rows load as saved."""
    import recsys.datasets

    monkeypatch.setattr(recsys.datasets, "FINITE_CHECK_BYTES", 3 * 2 * 4)  # 3 rows of 2 float32 values a block
    rng = np.random.default_rng(0)
    bad = rng.normal(size=(4, 2))
    bad[[1, 3], 0] = [1e39, -np.inf]  # past float32's range, and infinite, in two blocks
    with pytest.raises(DatasetError, match=r"in 2 row\(s\) \(first: item 1\)"):
        load_dataset(write_mmrec(tmp_path / "a", feats={"x": bad}))
    good = rng.normal(size=(4, 2)).astype(np.float32)
    ds = load_dataset(write_mmrec(tmp_path / "b", feats={"x": good}))
    np.testing.assert_array_equal(ds.item_features["x"], good)


@pytest.mark.parametrize(
    ("fmt", "text"),
    [
        ("mmrec", "userID\titemID\n0\tTrue\n"),
        ("recbole", "user_id:token\titem_id:token\trating:float\nu\ti\tfalse\n"),
    ],
)
def test_a_boolean_word_in_a_numeric_column_is_refused_by_either_reader(tmp_path, fmt, text):
    """pandas' C parser reads True / false as 1 / 0 in a float column; the strict reader's refusal holds."""
    folder = tmp_path / "ds"
    folder.mkdir()
    (folder / "ds.inter").write_text(text)
    with pytest.raises(DatasetError, match="expected") as fast:
        load_dataset(folder, fmt)
    strictly = mock.patch("recsys.datasets._read_regular_table", return_value=None)
    with strictly, pytest.raises(DatasetError, match="expected") as strict:
        load_dataset(folder, fmt)
    assert str(fast.value) == str(strict.value)


def test_missing_folder_and_file(tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        load_dataset(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match=r"No \.inter"):
        load_dataset(tmp_path / "empty")
    with pytest.raises(DatasetError, match="Unknown dataset format"):
        load_dataset(tmp_path / "empty", "csv")


RECBOLE_INTER = (
    "user_id:token\titem_id:token\trating:float\ttimestamp:float\n"
    "u1\tmovieA\t4\t100\nu1\tmovieB\t5\t200\nu2\tmovieA\t3\t150\nu2\tmovieC\t0\t160\n"
)
RECBOLE_ITEM = (
    "item_id:token\tmovie_title:token_seq\tgenre:token_seq\n"
    "movieA\tThe Matrix\tscifi action\nmovieB\tAmelie\tromance comedy\nmovieC\tAlien\tscifi horror\n"
    "movieD\tHeat\tcrime action\n"
)


def write_recbole(folder: Path, inter: str = RECBOLE_INTER, item: str | None = RECBOLE_ITEM) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{folder.name}.inter").write_text(inter)
    if item is not None:
        (folder / f"{folder.name}.item").write_text(item)
    return folder


def test_recbole_maps_tokens_and_reads_items(tmp_path):
    ds = load_dataset(write_recbole(tmp_path / "ml"), "recbole")
    assert ds.user_tokens == ["u1", "u2"]
    assert ds.item_tokens == ["movieA", "movieB", "movieC", "movieD"]  # movieD: in .item only
    assert ds.n_interactions == 3  # rating 0 is no interaction
    np.testing.assert_array_equal(ds.items, [0, 1, 0])
    np.testing.assert_array_equal(ds.timestamps, [100, 200, 150])
    assert ds.item_names == ["The Matrix", "Amelie", "Alien", "Heat"]
    assert ds.item_features["tfidf"].shape[0] == 4
    assert ds.split is None


def test_recbole_without_item_file(tmp_path):
    ds = load_dataset(write_recbole(tmp_path / "ml", item=None), "recbole")
    assert ds.item_features == {} and ds.item_names is None and ds.n_items == 3


@pytest.mark.parametrize(
    ("inter", "message"),
    [
        ("user_id:token\trating:float\nu1\t1\n", "lacks field"),
        ("user\titem\nu1\ti1\n", "not a RecBole 'name:type' field"),
        ("user_id:token\titem_id:token\ttimestamp:float\nu1\ti1\t10\nu1\ti2\tyesterday\n", "line 3"),
        ("user_id:token\titem_id:token\nu1\t\n", "line 2: empty item_id"),
    ],
)
def test_recbole_malformed(tmp_path, inter, message):
    with pytest.raises(DatasetError, match=message):
        load_dataset(write_recbole(tmp_path / "ml", inter, item=None), "recbole")


def test_recbole_duplicate_item_rows(tmp_path):
    item = "item_id:token\tname:token_seq\nmovieA\tx\nmovieA\ty\n"
    with pytest.raises(DatasetError, match="duplicate item_id"):
        load_dataset(write_recbole(tmp_path / "ml", item=item), "recbole")


def test_ratings_are_kept_per_interaction(tmp_path):
    ds = load_dataset(write_recbole(tmp_path / "ml"), "recbole")
    np.testing.assert_array_equal(ds.ratings, [4, 5, 3])  # the rating-0 row is no interaction
    assert ds.summary()["ratings"] == [3.0, 5.0]


def test_folders_named_like_data_files(tmp_path):
    folder = tmp_path / "ds"
    (folder / "x.inter").mkdir(parents=True)
    with pytest.raises(DatasetError, match="x.inter is a folder or a special file"):
        load_dataset(folder, "recbole")
    with pytest.raises(DatasetError, match="x.inter is a folder or a special file"):
        load_dataset(folder, "mmrec", name="x")
    rb = write_recbole(tmp_path / "ml", item=None)
    (rb / "ml.item").mkdir()
    with pytest.raises(DatasetError, match="ml.item is a folder"):
        load_dataset(rb, "recbole")


@pytest.mark.parametrize("column", ["itemID", "userID"])
def test_absurd_mmrec_ids_are_refused_before_allocation(tmp_path, column):
    big = 10**12
    row = f"0\t{big}\t1\t2" if column == "itemID" else f"{big}\t1\t1\t2"
    inter = f"userID\titemID\trating\tx_label\n0\t0\t1\t0\n{row}\n"
    with pytest.raises(DatasetError, match=rf"line 3: {column} {big} is far beyond the 2 distinct ids"):
        load_dataset(write_mmrec(tmp_path / "toy", inter, feats={}), "mmrec")


def test_gaps_in_mmrec_ids_are_fine(tmp_path):
    inter = "userID\titemID\trating\tx_label\n0\t0\t1\t0\n0\t5000\t1\t2\n"
    assert load_dataset(write_mmrec(tmp_path / "toy", inter, feats={}), "mmrec").n_items == 5001


def test_item_text_of_only_punctuation(tmp_path):
    item = "item_id:token\ttitle:token_seq\nmovieA\t!!!\nmovieB\t...\nmovieC\t?! -\n"
    with pytest.raises(DatasetError, match="ml.item: the item text columns hold no words"):
        load_dataset(write_recbole(tmp_path / "ml", item=item), "recbole")


def test_impossible_paths_are_dataset_errors(tmp_path):
    with pytest.raises(DatasetError, match="Cannot read dataset"):
        load_dataset(tmp_path / ("x" * 300), "recbole")
