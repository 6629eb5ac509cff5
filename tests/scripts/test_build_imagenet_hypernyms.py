"""Reading WordNet's data.noun into hypernym chains (a hand-made three-synset database)."""

from __future__ import annotations

import json

from scripts.build_imagenet_hypernyms import hypernym_chain, read_lexnames, read_noun_synsets

DATA_NOUN = (
    "  1 This software and database is being provided to you, the LICENSEE, by\n"
    "00001740 03 n 01 entity 0 000 | that which is perceived\n"
    "07705931 13 n 02 edible_fruit 0 fruit 1 001 @ 00001740 n 0000 | edible reproductive body\n"
    "07739125 13 n 01 apple 0 002 @ 07705931 n 0000 ~ 07742313 n 0000 | fruit with red or yellow skin\n"
    "07742313 13 n 02 Granny_Smith 0 eating_apple 0 001 @i 07739125 n 0000 | apple with green skin\n"
)


def test_chains_follow_hypernyms_nearest_first(tmp_path):
    (tmp_path / "data.noun").write_text(DATA_NOUN)
    (tmp_path / "lexnames").write_text("03\tnoun.Tops\t1\n13\tnoun.food\t1\n")
    synsets = read_noun_synsets(tmp_path / "data.noun")
    assert synsets["07742313"] == (["Granny Smith", "eating apple"], ["07739125"], "13")
    assert synsets["07739125"][1] == ["07705931"]  # the hyponym pointer (~) is not a parent
    assert hypernym_chain("07742313", synsets) == [["apple"], ["edible fruit", "fruit"], ["entity"]]
    assert hypernym_chain("00001740", synsets) == []
    assert read_lexnames(tmp_path / "lexnames") == {"03": "Tops", "13": "food"}


def test_the_shipped_file_covers_every_imagenet_class():
    from recsys.alignment.bridge import HIERARCHY_FILE

    doc = json.loads(HIERARCHY_FILE.read_text(encoding="utf-8"))
    assert len(doc["classes"]) == 1000 and len({c["wnid"] for c in doc["classes"]}) == 1000
    granny = next(c for c in doc["classes"] if c["wnid"] == "n07742313")
    assert granny["lexname"] == "food" and ["apple"] in granny["hypernyms"][:3]
    assert (HIERARCHY_FILE.parent / "LICENSE").read_text().startswith("WordNet Release 3.0")
