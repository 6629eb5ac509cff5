"""``python -m recsys align`` with several training sources."""

from __future__ import annotations

import pytest

from recsys.cli import build_parser, main


def _catalogue(folder, sources):
    folder.mkdir(parents=True)
    rows = ["id,title,description,category,image,audio,source"]
    rows += [f"i{i},Item {i},,things,,,{src}" for i, src in enumerate(sources)]
    (folder / "catalogue.csv").write_text("\n".join(rows) + "\n")
    return str(folder)


def test_catalogues_repeat_and_sources_attach_to_the_one_before():
    args = build_parser().parse_args(
        [
            "align",
            "--catalogue",
            "a",
            "--catalogue",
            "b",
            "--source",
            "openclipart",
            "--source",
            "mdi",
            "--text",
            "title",
        ]
    )
    assert args.catalogues == [("a", []), ("b", ["openclipart", "mdi"])] and args.text == "title"


def test_a_source_without_a_catalogue_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args(["align", "--source", "openclipart", "--catalogue", "a"])
    assert exc.value.code == 2 and "--source NAME must follow" in capsys.readouterr().err


def test_unmatched_or_media_less_sources_fail_before_any_model_loads(tmp_path, capsys, monkeypatch):
    from recsys import encoders

    def no_models(*args, **kwargs):
        raise AssertionError("a model was loaded for sources that cannot train")

    monkeypatch.setattr(encoders, "create_encoder", no_models)
    monkeypatch.setenv("RECSYS_CACHE_DIR", str(tmp_path / "cache"))
    big = _catalogue(tmp_path / "big", ["openclipart-png 1: usr/share/openclipart/png/a.png", "@iconify/json 2: mdi:a"])
    assert main(["align", "--catalogue", big, "--source", "emoji"]) == 2
    assert "--source 'emoji' matches no item" in capsys.readouterr().err
    assert main(["align", "--catalogue", big, "--source", "iconify", "--out", str(tmp_path / "out")]) == 2
    assert "The sources iconify have no image or audio items" in capsys.readouterr().err
    assert main(["align", "--catalogue", big, "--extra-pairs", big, "--catalogue-repeat", "0"]) == 2
    assert "--catalogue-repeat must be at least 1" in capsys.readouterr().err
    assert main(["align", "--catalogue", big, "--extra-pairs", big]) == 2
    assert "are both named 'big'" in capsys.readouterr().err
    other = _catalogue(tmp_path / "elsewhere" / "big", ["openclipart-png 1: usr/share/openclipart/png/b.png"])
    assert main(["align", "--catalogue", big, "--extra-pairs", other]) == 2
    assert "are both named 'big'" in capsys.readouterr().err
