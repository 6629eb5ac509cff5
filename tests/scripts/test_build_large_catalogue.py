"""``scripts/build_large_catalogue.py``: the selection rules on hand-made inputs, and an end-to-end
build of a tiny fake ``@iconify/json`` package and openclipart tree (no network) that must load
with zero bad rows.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest
from PIL import Image

from recsys.catalogue import load_catalogue
from recsys.errors import CatalogueError

REPO = Path(__file__).resolve().parents[2]


def _load_script():
    spec = importlib.util.spec_from_file_location(
        "build_large_catalogue", REPO / "scripts" / "build_large_catalogue.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # worker processes find render_job by module name
    spec.loader.exec_module(module)
    return module


blc = _load_script()

SQUARE = '<path fill="currentColor" d="M4 4h16v16H4z"/>'


# ------------------------------------------------------------------ pure rules


@pytest.mark.parametrize(
    ("prefix", "info"),
    [
        ("twemoji", {"name": "Twitter Emoji", "category": "Emoji"}),
        ("noto", {"name": "Noto Emoji"}),
        ("fluent-emoji-flat", {"name": "Fluent Emoji Flat"}),
        ("openmoji", {"name": "OpenMoji"}),
        ("streamline-emojis", {"name": "Streamline Emojis"}),
        ("some-new-set", {"name": "Smileys", "category": "Emoji"}),
        ("noto-v1", {}),
    ],
)
def test_emoji_sets_are_recognised(prefix, info):
    assert blc.is_emoji_set(prefix, info)
    assert blc.set_exclusion(prefix, {**info, "license": {"spdx": "MIT"}}, listed=True, chosen=None).startswith("emoji")


def test_emoji_and_flag_sets_stay_out_even_when_chosen():
    mit = {"license": {"spdx": "MIT"}}
    assert blc.set_exclusion("twemoji", mit, listed=True, chosen=frozenset({"twemoji"})).startswith("emoji")
    assert blc.set_exclusion("circle-flags", mit, listed=True, chosen=frozenset({"circle-flags"})).startswith("flags")


@pytest.mark.parametrize(
    ("prefix", "name", "flag"),
    [
        ("circle-flags", "Circle Flags", True),
        ("cif", "CoreUI Flags", True),
        ("flagpack", "", True),
        ("maki", "Maki", False),
    ],
)
def test_flag_sets(prefix, name, flag):
    assert blc.is_flag_set(prefix, {"name": name}) is flag


def test_ordinary_sets_are_not_emoji():
    assert not blc.is_emoji_set("mdi", {"name": "Material Design Icons", "category": "Material"})
    assert not blc.is_emoji_set("tabler", {"name": "Tabler Icons", "category": "UI 24px"})
    # ...but a UI set's emoji drawings are left out one by one
    assert blc.is_emoji_like_icon("emoji-neutral-fill") and blc.is_emoji_like_icon("emoticon-happy-outline")
    assert not blc.is_emoji_like_icon("home") and not blc.is_emoji_like_icon("bicycle")


@pytest.mark.parametrize("spdx", ["MIT", "Apache-2.0", "ISC", "CC0-1.0", "CC-BY-4.0", "OFL-1.1", "BSD-3-Clause"])
def test_permissive_licences_are_allowed(spdx):
    assert blc.licence_allowed(spdx)


@pytest.mark.parametrize("spdx", ["GPL-3.0", "GPL-2.0-only", "CC-BY-SA-4.0", "CC-BY-NC-4.0", "MPL-2.0", "", None])
def test_copyleft_noncommercial_and_unknown_licences_are_not(spdx):
    assert not blc.licence_allowed(spdx)
    assert "licence" in blc.set_exclusion("x", {"license": {"spdx": spdx}}, listed=True, chosen=None)


def test_opt_in_sets_are_used_only_when_named():
    logos = {"license": {"spdx": "CC0-1.0"}, "category": "Logos"}
    animated = {"license": {"spdx": "MIT"}, "tags": ["Contains Animations"]}
    hidden = {"license": {"spdx": "MIT"}, "hidden": True}
    for prefix, info, listed in [("logos", logos, True), ("line-md", animated, True), ("old", hidden, True)]:
        assert blc.set_exclusion(prefix, info, listed=listed, chosen=None) is not None
        assert blc.set_exclusion(prefix, info, listed=listed, chosen=frozenset({prefix})) is None
    assert blc.set_exclusion("mdi", {"license": {"spdx": "MIT"}}, listed=True, chosen=frozenset({"x"})) is not None
    assert blc.set_exclusion("unlisted", {"license": {"spdx": "MIT"}}, listed=False, chosen=None) is not None


def test_category_paths():
    assert blc.icon_category("tabler", {"category": "UI 24px"}) == "icons/ui-24px/tabler"
    assert blc.icon_category("ant-design", {"category": "UI 16px / 32px"}) == "icons/ui-16px-32px/ant-design"
    assert blc.icon_category("x", {}) == "icons/other/x"
    assert blc.clipart_category("animals/birds") == "clipart/animals/birds"
    assert blc.clipart_category("") == "clipart"


def test_ids_are_unique_and_disambiguated_only_where_they_collide():
    keys = [
        ("iconify", "material-symbols", "light-group"),
        ("iconify", "material-symbols-light", "group"),
        ("iconify", "mdi", "home"),
        ("openclipart", "animals/birds", "owl_01"),
    ]
    ids = blc.assign_ids(keys)
    assert ids == [
        "iconify-material-symbols--light-group",
        "iconify-material-symbols-light--group",
        "iconify-mdi-home",
        "openclipart-animals-birds-owl_01",
    ]
    with pytest.raises(CatalogueError, match="collide"):
        blc.assign_ids([("iconify", "mdi", "home"), ("iconify", "mdi", "home")])


def test_spread_shares_a_limit_evenly_and_passes_on_what_small_buckets_cannot_take():
    assert blc.spread({"a": 10, "b": 2, "c": 5}, 9) == {"a": 4, "b": 2, "c": 3}
    assert blc.spread({"a": 10, "b": 2}, None) == {"a": 10, "b": 2}
    assert blc.spread({"a": 10, "b": 2}, 50) == {"a": 10, "b": 2}
    assert sum(blc.spread({str(i): i for i in range(1, 30)}, 100).values()) == 100


def test_evenly_samples_the_whole_sequence():
    assert blc.evenly(list(range(10)), 3) == [0, 3, 6]
    assert blc.evenly([1, 2], 5) == [1, 2]


def test_titles_and_clipart_text():
    assert blc.readable_title("arrow-left-bold") == "Arrow left bold"
    assert blc.clipart_title_from_name("saturn_dan_gerhards_01") == "Saturn dan gerhards"
    meta = {"title": "Saturn", "description": "The Planet Saturn", "keywords": ["planet", "space"]}
    assert blc.clipart_text("saturn_01", meta, set()) == ("Saturn", "The Planet Saturn. Keywords: planet, space.")
    title, description = blc.clipart_text("help", {"title": "Flat Icons", "keywords": []}, {"Flat Icons"})
    assert (title, description) == ("Help", "From: Flat Icons.")


def test_icon_svg_keeps_the_aspect_ratio():
    svg = blc.icon_svg({"body": SQUARE, "width": 48}, {"height": 24}, 128)
    assert 'width="128" height="64"' in svg and 'viewBox="0 0 48 24"' in svg


# ------------------------------------------------------------------ end to end on fake sources


def _fake_iconify(root: Path) -> Path:
    """A tiny unpacked @iconify/json: one MIT set (3 icons, one hidden), an emoji set, a GPL set."""
    pkg = root / "package"
    (pkg / "json").mkdir(parents=True)
    (pkg / "package.json").write_text(json.dumps({"name": "@iconify/json", "version": "9.9.9"}))
    sets = {
        "tiny": (
            {"name": "Tiny Icons", "category": "UI 24px", "license": {"spdx": "MIT", "title": "MIT"}},
            {
                "arrow-left-bold": {"body": '<path fill="currentColor" d="M2 12l10-10v20z"/>'},
                "box": {"body": SQUARE, "width": 24},
                "secret": {"body": SQUARE, "hidden": True},
            },
        ),
        "fake-emoji": (
            {"name": "Fake Emoji", "category": "Emoji", "license": {"spdx": "MIT"}},
            {"grin": {"body": SQUARE}},
        ),
        "copyleft": (
            {"name": "Copyleft Icons", "category": "UI 24px", "license": {"spdx": "GPL-3.0"}},
            {"gear": {"body": SQUARE}},
        ),
    }
    collections = {}
    for prefix, (info, icons) in sets.items():
        info = {**info, "author": {"name": f"{prefix} author", "url": "https://example.org"}}
        collections[prefix] = info
        data = {"prefix": prefix, "info": info, "icons": icons, "width": 24, "height": 24}
        if prefix == "tiny":
            data["categories"] = {"Arrows": ["arrow-left-bold"]}
        (pkg / "json" / f"{prefix}.json").write_text(json.dumps(data))
    (pkg / "collections.json").write_text(json.dumps(collections))
    return root


def _fake_openclipart(root: Path) -> Path:
    """An extracted openclipart-svg + openclipart-png tree: an owl, and a smiley in an excluded folder."""
    base = root / "usr/share/openclipart"
    meta = (
        '<svg xmlns="http://www.w3.org/2000/svg" xmlns:dc="http://purl.org/dc/elements/1.1/" '
        'xmlns:cc="http://web.resource.org/cc/" xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" '
        'width="40" height="20"><metadata><rdf:RDF><cc:Work rdf:about="">'
        "<dc:title>{title}</dc:title><dc:subject><rdf:Bag><rdf:li>bird</rdf:li><rdf:li>hash</rdf:li>"
        "</rdf:Bag></dc:subject><dc:creator><cc:Agent><dc:title>Ann Artist</dc:title></cc:Agent></dc:creator>"
        '</cc:Work></rdf:RDF></metadata><rect width="40" height="20" fill="#a52"/></svg>'
    )
    for folder, stem, title in [("animals/birds", "owl_ann_01", "Barn Owl"), ("people/smilies", "smile", "Smile")]:
        svg = base / "svg" / folder / f"{stem}.svg"
        svg.parent.mkdir(parents=True, exist_ok=True)
        svg.write_text(meta.format(title=title))
        png = base / "png" / folder / f"{stem}.png"
        png.parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGBA", (400, 200), (170, 85, 34, 255)).save(png)
    doc = root / "usr/share/doc/openclipart-svg"
    doc.mkdir(parents=True)
    (doc / "copyright").write_text("Public domain.\n")
    return root


@pytest.fixture
def fake_sources(tmp_path):
    return _fake_iconify(tmp_path / "iconify"), _fake_openclipart(tmp_path / "openclipart")


def _run(out: Path, sources, *extra: str) -> int:
    iconify, openclipart = sources
    argv = ["--out", str(out), "--iconify-from", str(iconify), "--openclipart-from", str(openclipart), *extra]
    return blc.main(argv)


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_end_to_end_build_loads_with_zero_bad_rows_and_is_idempotent(fake_sources, tmp_path, capsys):
    out = tmp_path / "large"
    assert _run(out, fake_sources, "--jobs", "2") == 0
    catalogue = load_catalogue(out)
    assert catalogue.bad_rows == []
    assert sorted(catalogue.ids) == [
        "iconify-tiny-arrow-left-bold",
        "iconify-tiny-box",
        "openclipart-animals-birds-owl_ann_01",
    ]
    arrow = catalogue.item("iconify-tiny-arrow-left-bold")
    assert (arrow.title, arrow.category, arrow.extra["licence"]) == ("Arrow left bold", "icons/ui-24px/tiny", "MIT")
    assert arrow.description == "Tiny Icons icon; topics: Arrows."
    assert arrow.extra["author"] == "tiny author"
    owl = catalogue.item("openclipart-animals-birds-owl_ann_01")
    assert (owl.title, owl.category, owl.extra["licence"]) == ("Barn Owl", "clipart/animals/birds", "public-domain")
    assert owl.description == "Keywords: bird." and owl.extra["author"] == "Ann Artist"
    with Image.open(arrow.image) as img:
        assert img.mode == "RGBA" and max(img.size) == blc.ICON_SIDE
        assert img.getpixel((0, 0))[3] == 0 and img.getchannel("A").getextrema()[1] == 255
    with Image.open(owl.image) as img:
        assert img.size == (blc.CLIPART_SIDE, blc.CLIPART_SIDE // 2)
    licences = (out / "LICENSES.md").read_text()
    assert (
        "| `tiny` | Tiny Icons |" in licences
        and "`fake-emoji`: emoji" in licences
        and "`copyleft`: licence" in licences
    )
    assert (out / "licenses" / "openclipart-svg.copyright").read_text() == "Public domain.\n"
    assert "3 items, 0 bad rows" in capsys.readouterr().out

    before = _snapshot(out)
    assert _run(out, fake_sources, "--jobs", "1") == 0
    assert _snapshot(out) == before
    assert "kept: 3" in capsys.readouterr().out


def test_limit_spreads_over_sources_and_removes_images_no_longer_selected(fake_sources, tmp_path):
    out = tmp_path / "large"
    assert _run(out, fake_sources, "--jobs", "1") == 0
    assert _run(out, fake_sources, "--jobs", "1", "--limit", "2") == 0
    catalogue = load_catalogue(out)
    assert sorted(i.split("-")[0] for i in catalogue.ids) == ["iconify", "openclipart"]
    assert len(list((out / "images").rglob("*.png"))) == 2


def test_sources_and_sets_options(fake_sources, tmp_path, capsys):
    out = tmp_path / "icons"
    assert _run(out, fake_sources, "--sources", "iconify", "--sets", "tiny", "--jobs", "1") == 0
    assert sorted(load_catalogue(out).ids) == ["iconify-tiny-arrow-left-bold", "iconify-tiny-box"]
    assert _run(tmp_path / "x", fake_sources, "--sources", "iconify", "--sets", "fake-emoji") == 2
    assert "cannot be used: emoji" in capsys.readouterr().err
    assert _run(tmp_path / "y", fake_sources, "--sources", "iconify", "--sets", "nope") == 2
    assert "unknown icon set" in capsys.readouterr().err
