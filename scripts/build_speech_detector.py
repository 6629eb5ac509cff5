"""Train the speech detector (``data/speech/aisfx-speech.json``) from Debian packages, and measure it.

Why: a spoken query ("woof woof") is matched by how it sounds, i.e. to the catalogue's spoken letter
names; the app should say the clip is speech instead (:mod:`recsys.speech`). Nothing here is
committed but the head: the clips are downloaded with ``apt-get download`` into a temporary folder.

    python scripts/build_speech_detector.py                      # download, embed (~1,100 clips), train, write
    python scripts/build_speech_detector.py --debs DIR --dry-run # .debs you already have; print figures only

Data (every licence from the package's Debian copyright file, listed in the head's metadata):

- speech: Tux Paint's spoken stamp descriptions ``NAME_desc[_LANG].ogg`` (``tuxpaint-stamps-default``,
  ~7,400 clips in 13 languages), sampled per language; utterances synthesised with ``espeak-ng``
  when it is installed; the ALSA channel names ("front left", ...) of ``sound-theme-freedesktop``
  (test only: a voice from another source);
- non-speech: Tux Paint's stamp sound effects (not its spoken letters, digits or descriptions) and
  the sound effects of ``sound-theme-freedesktop``, ``yaru-theme-sound``, ``deepin-sound-theme``,
  ``heroes-sound-effects``, ``lbreakout2-data``, ``chromium-bsu-data`` and ``sound-icons``.
  Clips whose names suggest a voice (a game's "excellent", a face's laugh) are left out of training
  and only reported.

Splits: Tux Paint speech is held out by language *and* by stamp (a test clip's stamp is never
trained on, in any language); effects by stamp or by whole package; espeak-ng by phrase. The
threshold and the regularisation are chosen on the validation split; test figures are printed.
An encoder-free acoustic baseline (syllable-rate modulation, spectral and MFCC statistics) is
trained and measured on the same splits, and the better of the two on validation is reported.
"""

from __future__ import annotations

import argparse
import hashlib
import re
import subprocess
import sys
import tempfile
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from recsys.catalogue import Catalogue, Item  # noqa: E402
from recsys.errors import InputError  # noqa: E402
from recsys.media import load_audio  # noqa: E402
from recsys.speech import DEFAULT_DETECTOR, REBUILD, SpeechDetector, save_detector  # noqa: E402

SEED = 20240611
TUXPAINT = "tuxpaint-stamps-default"
STAMPS = Path("usr/share/tuxpaint/stamps")
#: package -> licence of its sound files (Debian copyright file).
LICENCES = {
    TUXPAINT: "GPL-2+",
    "sound-theme-freedesktop": "GPL-2+, GPL-2, CC-BY-3.0 and CC-BY-SA-3.0 (per file)",
    "yaru-theme-sound": "CC-BY-SA-4.0",
    "deepin-sound-theme": "GPL-3+",
    "heroes-sound-effects": "GPL-2+",
    "lbreakout2-data": "GPL-2+",
    "chromium-bsu-data": "Expat (data/wav)",
    "sound-icons": "GPL-2+",
    "espeak-ng": "GPL-3+ (the synthesiser; its output is generated here)",
}
#: Effect packages held out whole: never trained on, chosen on (val) or measured on (test).
PACKAGE_SPLIT = {
    "deepin-sound-theme": "train",
    "heroes-sound-effects": "train",
    "lbreakout2-data": "train",
    "sound-icons": "train",
    "yaru-theme-sound": "val",
    "sound-theme-freedesktop": "test",
    "chromium-bsu-data": "test",
}
#: Tux Paint description languages (the suffix; "" is English) by split.
LANGUAGE_SPLIT = {
    "test": ("", "el", "nl", "lt"),
    "val": ("bg", "da"),
    "train": ("fr", "ru", "ro", "ca", "es", "be", "pt_BR", "ml"),
}
PER_LANGUAGE = {"train": 60, "val": 45, "test": 40}
#: Clips that may hold a voice: neither speech nor effect for training; their p is reported.
UNSURE = re.compile(
    r"(dreydl-|santahat|apollo_lander|final-roll-call|xing_school|symbols/faces/|halloween/ghost|"
    r"heroes-sound-effects/.*/(go|oh|no|ho_yeh|stop|foule\d)\.wav|"
    r"lbreakout2-data/.*/(damn|dammit|excellent|verygood|wontgiveup)\.wav)"
)
VOICE_CHANNELS = re.compile(r"sound-theme-freedesktop/.*/audio-channel-")
AUDIO_SUFFIXES = (".ogg", ".oga", ".wav", ".flac")
#: espeak-ng phrases (English text, several voices). "woof woof" is in the test split by construction.
PHRASES = (
    "woof woof", "meow", "moo", "quack quack", "a barking dog", "the cat is sleeping", "hello there",
    "good morning", "what a lovely day", "one two three four", "the red apple", "an old steam train",
    "please open the door", "where is my hat", "it is raining again", "the bird sings", "a loud drum",
    "thank you very much", "see you tomorrow", "the quick brown fox", "ring ring", "tick tock",
    "the bell rings", "a car horn", "happy birthday", "let us go to the beach", "my name is Tux",
    "seven eight nine ten", "the elephant is big", "choo choo",
)
VOICES = ("en", "en-us+f3", "de", "fr+m3")
TEST_PHRASES = ("woof woof",)


@dataclass(frozen=True)
class Clip:
    path: Path
    speech: int | None  # 1 speech, 0 not, None unsure (reported only)
    source: str  # package (or "espeak-ng")
    group: str  # what a split keeps together: stamp, package or phrase
    language: str = ""


def _run(cmd: list[str], **kw) -> None:
    try:
        subprocess.run(cmd, check=True, capture_output=True, **kw)
    except FileNotFoundError as exc:
        raise SystemExit(f"'{cmd[0]}' is not installed (needs Debian's apt-get and dpkg-deb)") from exc
    except subprocess.CalledProcessError as exc:
        raise SystemExit(f"{' '.join(cmd)} failed: {exc.stderr.decode(errors='replace').strip()}") from exc


def extract_packages(debs: Path | None, workdir: Path) -> dict[str, Path]:
    """Package -> the folder its .deb was extracted to (downloaded into ``workdir`` unless in ``debs``)."""
    wanted = [TUXPAINT, *PACKAGE_SPLIT]
    found = {p: sorted((debs or workdir).glob(f"{p}_*.deb")) for p in wanted}
    missing = [p for p, hits in found.items() if not hits]
    if missing:
        _run(["apt-get", "download", *missing], cwd=workdir)
        found.update({p: sorted(workdir.glob(f"{p}_*.deb")) for p in missing})
    out = {}
    for package, hits in found.items():
        if not hits:
            raise SystemExit(f"apt-get download produced no {package} .deb in {workdir}")
        out[package] = workdir / "x" / package
        out[package].mkdir(parents=True, exist_ok=True)
        _run(["dpkg-deb", "-x", str(hits[-1]), str(out[package])])
    return out


def _split_of(group: str) -> str:
    """A fixed split per group: 60% train, 20% val, 20% test, by a hash of the group's name."""
    bucket = int(hashlib.sha1(f"{SEED}:{group}".encode()).hexdigest(), 16) % 100
    return "train" if bucket < 60 else "val" if bucket < 80 else "test"


def tuxpaint_clips(root: Path) -> list[Clip]:
    """Descriptions sampled per language (stamp split = language split), and every sound effect."""
    stamps = root / STAMPS
    by_language: dict[str, list[Clip]] = defaultdict(list)
    clips = []
    for path in sorted(stamps.rglob("*")):
        if path.suffix not in AUDIO_SUFFIXES or not path.is_file():
            continue
        rel = path.relative_to(stamps).as_posix()
        desc = re.fullmatch(r"(.+)_desc(?:_([a-z]{2}(?:_[A-Z]{2})?))?\.(?:ogg|wav)", path.name)
        if desc:
            stamp = f"{path.parent.relative_to(stamps).as_posix()}/{desc.group(1)}"
            by_language[desc.group(2) or ""].append(Clip(path, 1, TUXPAINT, stamp, desc.group(2) or "en"))
        elif rel.startswith(("symbols/alphabets/", "symbols/math/")):
            continue  # spoken letters and digits: speech, but the demo's own check, not training data
        elif re.search(r"_[a-z]{2}(_[A-Za-z]{2})?\.(ogg|wav)$", path.name):
            continue  # localised variants of an effect
        else:
            stamp = re.sub(r"\d+$", "", path.stem)  # pig_golden2 is pig_golden's sound
            clips.append(Clip(path, None if UNSURE.search(rel) else 0, TUXPAINT, f"tuxpaint:{stamp}"))
    rng = np.random.default_rng(SEED)
    for split, languages in LANGUAGE_SPLIT.items():
        for language in languages:
            eligible = [c for c in by_language[language] if _split_of(c.group) == split]
            take = min(PER_LANGUAGE[split], len(eligible))
            clips.extend(eligible[i] for i in sorted(rng.choice(len(eligible), take, replace=False)))
    return clips


def effect_clips(package: str, root: Path) -> list[Clip]:
    clips = []
    for path in sorted(root.rglob("*")):
        if path.suffix not in AUDIO_SUFFIXES or not path.is_file():
            continue
        rel = f"{package}/{path.relative_to(root).as_posix()}"
        if VOICE_CHANNELS.search(rel):
            clips.append(Clip(path, 1, package, f"{package}:voice", "en"))
        else:
            clips.append(Clip(path, None if UNSURE.search(rel) else 0, package, package))
    return clips


def espeak_clips(workdir: Path) -> list[Clip]:
    """Each phrase in each voice, as WAV; none when espeak-ng is not installed."""
    out = workdir / "espeak"
    out.mkdir(parents=True, exist_ok=True)
    clips = []
    for i, phrase in enumerate(PHRASES):
        for voice in VOICES:
            path = out / f"{i:02d}-{voice.replace('+', '_')}.wav"
            try:
                subprocess.run(["espeak-ng", "-v", voice, "-w", str(path), phrase], check=True, capture_output=True)
            except FileNotFoundError:
                print("espeak-ng is not installed (apt-get install espeak-ng): no synthetic speech")
                return []
            clips.append(Clip(path, 1, "espeak-ng", f"espeak:{phrase}", voice))
    return clips


def split_of(clip: Clip) -> str:
    if clip.source in PACKAGE_SPLIT:
        return "test" if clip.speech == 1 else PACKAGE_SPLIT[clip.source]
    if clip.source == "espeak-ng" and clip.group.removeprefix("espeak:") in TEST_PHRASES:
        return "test"
    return _split_of(clip.group)


def embed(clips: list[Clip], cache_dir: Path | None) -> tuple[np.ndarray, np.ndarray, str]:
    """aisfx clip embeddings (through the project's cached batch pass), rows present, the encoder id."""
    from recsys.encoders import create_encoder
    from recsys.encoding import BatchOptions, catalogue_features

    encoder = create_encoder("aisfx")
    items = [Item(f"clip{i:05d}", "", "", "clips", None, c.path) for i, c in enumerate(clips)]
    catalogue = Catalogue(Path("/"), items, [], fingerprint="speech-detector")
    feats = catalogue_features(
        catalogue, "audio", encoder, cache_dir=cache_dir, options=BatchOptions(batch_size=16, workers=0)
    )["embedding"]
    return feats.vectors, feats.present, encoder.encoder_id


def acoustic_features(path: Path) -> np.ndarray:
    """Encoder-free description of a clip: syllable-rate (2-8 Hz) modulation of the loudness envelope,
    voicing-like spectral statistics and MFCC means / spreads."""
    import librosa

    audio = load_audio(path)
    sr = 16000
    y = librosa.resample(audio.samples.astype(np.float32), orig_sr=audio.sample_rate, target_sr=sr)
    y = y / (np.max(np.abs(y)) or 1.0)
    hop = 160  # 100 frames per second
    rms = librosa.feature.rms(y=y, frame_length=400, hop_length=hop)[0]
    env = np.log(rms + 1e-4)
    env = env - env.mean()
    spectrum = np.abs(np.fft.rfft(env * np.hanning(len(env)), n=max(1024, len(env)))) ** 2
    freqs = np.fft.rfftfreq(max(1024, len(env)), d=1 / 100)
    band = spectrum[(freqs >= 2) & (freqs <= 8)].sum() / (spectrum[(freqs >= 0.5) & (freqs <= 25)].sum() + 1e-12)
    mfcc = librosa.feature.mfcc(y=y, sr=sr, n_mfcc=13, hop_length=hop)
    flat = librosa.feature.spectral_flatness(y=y, hop_length=hop)[0]
    cent = librosa.feature.spectral_centroid(y=y, sr=sr, hop_length=hop)[0] / sr
    zcr = librosa.feature.zero_crossing_rate(y, frame_length=400, hop_length=hop)[0]
    quiet = float(np.mean(rms < 0.5 * rms.mean()))
    delta = librosa.feature.delta(mfcc) if mfcc.shape[1] >= 9 else np.zeros_like(mfcc)
    stats = [band, quiet, np.log(len(y) / sr)]
    for x in (flat, cent, zcr):
        stats += [x.mean(), x.std()]
    return np.concatenate([stats, mfcc.mean(1), mfcc.std(1), delta.std(1)]).astype(np.float64)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


@dataclass
class Fitted:
    name: str
    c: float
    weights: np.ndarray  # on the raw inputs (the scaler folded in)
    bias: float
    threshold: float

    def proba(self, x: np.ndarray) -> np.ndarray:
        return _sigmoid(x @ self.weights + self.bias)


def fit(name: str, x: np.ndarray, y: np.ndarray, split: np.ndarray) -> Fitted:
    """Logistic regression on train; C by validation log-loss, threshold by validation balanced accuracy."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import balanced_accuracy_score, log_loss

    tr, va = split == "train", split == "val"
    mean, scale = x[tr].mean(0), x[tr].std(0) + 1e-8
    best = None
    for c in (0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0):
        model = LogisticRegression(C=c, class_weight="balanced", max_iter=5000).fit((x[tr] - mean) / scale, y[tr])
        w = model.coef_[0] / scale
        b = float(model.intercept_[0] - np.dot(model.coef_[0], mean / scale))
        loss = log_loss(y[va], _sigmoid(x[va] @ w + b), labels=[0, 1])
        if best is None or loss < best[0]:
            best = (loss, c, w, b)
    _, c, w, b = best
    p = _sigmoid(x[va] @ w + b)
    grid = np.round(np.arange(0.05, 0.96, 0.01), 2)
    scores = [balanced_accuracy_score(y[va], p >= t) for t in grid]
    best_grid = grid[np.isclose(scores, max(scores))]
    threshold = float(best_grid[np.argmin(np.abs(best_grid - 0.5))])  # ties: the one nearest even odds
    return Fitted(name, c, w, b, threshold)


def metrics(p: np.ndarray, y: np.ndarray, threshold: float) -> dict[str, float]:
    pred = p >= threshold
    tp, fp, fn = int(np.sum(pred & (y == 1))), int(np.sum(pred & (y == 0))), int(np.sum(~pred & (y == 1)))
    bins = np.minimum((p * 10).astype(int), 9)
    filled = [k for k in range(10) if np.any(bins == k)]
    ece = sum(abs(p[bins == k].mean() - y[bins == k].mean()) * np.mean(bins == k) for k in filled)
    return {
        "n": len(y),
        "speech": int(y.sum()),
        "accuracy": float(np.mean(pred == y)),
        "balanced_accuracy": float((np.mean(pred[y == 1]) + np.mean(~pred[y == 0])) / 2),
        "precision": tp / (tp + fp) if tp + fp else float("nan"),
        "recall": tp / (tp + fn) if tp + fn else float("nan"),
        "brier": float(np.mean((p - y) ** 2)),
        "ece": float(ece),
    }


def _line(name: str, m: dict[str, float]) -> str:
    return (
        f"{name:<34} n={m['n']:>4} speech={m['speech']:>4} acc={m['accuracy']:.3f} "
        f"bal_acc={m['balanced_accuracy']:.3f} P={m['precision']:.3f} R={m['recall']:.3f} "
        f"Brier={m['brier']:.3f} ECE={m['ece']:.3f}"
    )


def report(model: Fitted, x: np.ndarray, y: np.ndarray, split: np.ndarray, clips: list[Clip]) -> dict:
    """Validation and test figures, and test figures per source."""
    out = {}
    p = model.proba(x)
    print(f"-- {model.name}: C={model.c}, threshold={model.threshold:.2f} (chosen on validation)")
    for part in ("val", "test"):
        rows = split == part
        out[part] = metrics(p[rows], y[rows], model.threshold)
        print(_line(part, out[part]))
    sources = sorted({(c.source, c.speech) for c, s in zip(clips, split, strict=True) if s == "test"})
    for source, label in sources:
        rows = np.array([c.source == source and c.speech == label for c in clips]) & (split == "test")
        hit = float(np.mean((p[rows] >= model.threshold) == (label == 1)))
        print(f"   test {source} ({'speech' if label else 'effects'}): {rows.sum()} clips, {hit:.3f} correct")
    test_speech = [(c, q) for c, q, s in zip(clips, p, split, strict=True) if s == "test" and c.speech == 1]
    for language in sorted({c.language for c, _ in test_speech}):
        hits = [q >= model.threshold for c, q in test_speech if c.language == language]
        print(f"   test speech in {language}: {len(hits)} clips, recall {np.mean(hits):.3f}")
    wrong = [
        f"{c.source}:{c.path.name}={q:.2f}"
        for c, q, s in zip(clips, p, split, strict=True)
        if s == "test" and (q >= model.threshold) != (c.speech == 1)
    ]
    print("   test errors: " + ", ".join(wrong))
    return out


def demo_check(head: Fitted, clips: list[Clip], split: dict[str, str], cache_dir: Path | None) -> dict[str, float]:
    """p(speech) of the demo catalogue's clips: its spoken letters and digits, its effects, and "woof woof"."""
    sounds = REPO / "data" / "tuxpaint" / "sounds"
    paths = sorted(sounds.glob("*.ogg"))
    woof = [c for c in clips if c.group == "espeak:woof woof"]
    vectors, present, _ = embed([Clip(p, None, "demo", "demo") for p in paths] + woof, cache_dir)
    p = head.proba(vectors)
    spoken = re.compile(r"^([0-9]|[A-Za-z]_(filled|outline)|.*_with_umlaut_.*|ss_eszett_.*)\.ogg$")
    out = {}
    for kind, rows in (
        ("spoken letters and digits", [i for i, x in enumerate(paths) if spoken.match(x.name)]),
        ("effects", [i for i, x in enumerate(paths) if not spoken.match(x.name)]),
    ):
        rows = [i for i in rows if present[i]]
        print(f"demo {kind}: {len(rows)} clips, {np.mean(p[rows] >= head.threshold):.3f} called speech")
    trained = {c.path.name: split[c.path.name] for c in clips if c.source == TUXPAINT and c.speech == 0}
    for name in ("A_filled.ogg", "dog.ogg", "cymbal_crash.ogg", "rooster.ogg", "bell.oga"):
        for i, x in enumerate(paths):
            if x.name == name:
                out[name] = float(p[i])
                print(f"demo {name}: p(speech)={p[i]:.3f} ({trained.get(name, 'not a training clip')} split)")
    for c, q in zip(woof, p[len(paths) :], strict=True):
        out[f"espeak-ng {c.language} 'woof woof'"] = float(q)
        print(f"espeak-ng -v {c.language} 'woof woof': p(speech)={q:.3f} (test split)")
    return out


def _clip_names(clips: list[Clip], rows: np.ndarray) -> list[str]:
    return [f"{c.source}:{c.path.name}" for c, r in zip(clips, rows, strict=True) if r]


def train(clips: list[Clip], args: argparse.Namespace) -> int:
    """Embed and describe the clips, fit both detectors, print their figures, write the embedding head."""
    vectors, present, encoder_id = embed(clips, args.cache_dir)
    acoustic = []
    for c in clips:
        try:
            acoustic.append(acoustic_features(c.path))
        except InputError:
            acoustic.append(None)
    keep = np.array([ok and a is not None for ok, a in zip(present, acoustic, strict=True)])
    print(f"{int((~keep).sum())} clips could not be decoded (silent or empty) and are left out")
    width = next(len(a) for a in acoustic if a is not None)
    acoustic_x = np.stack([a if a is not None else np.zeros(width) for a in acoustic])
    labelled = keep & np.array([c.speech is not None for c in clips])
    split = np.array([split_of(c) for c in clips])
    y = np.array([c.speech or 0 for c in clips])
    sub = [c for c, k in zip(clips, labelled, strict=True) if k]
    for part in ("train", "val", "test"):
        rows = labelled & (split == part)
        languages = sorted({c.language for c, r in zip(clips, rows, strict=True) if r and c.speech})
        print(f"{part}: {rows.sum()} clips, {int(y[rows].sum())} speech; languages / voices {', '.join(languages)}")
    results: dict = {}
    models = {}
    for name, x in (("aisfx embedding + logistic", vectors), ("acoustic features + logistic", acoustic_x)):
        models[name] = fit(name, x[labelled], y[labelled], split[labelled])
        results[name] = report(models[name], x[labelled], y[labelled], split[labelled], sub)
    unsure = keep & np.array([c.speech is None for c in clips])
    head = models["aisfx embedding + logistic"]
    named = zip(_clip_names(clips, unsure), head.proba(vectors[unsure]), strict=True)
    print("unlabelled (maybe a voice): " + ", ".join(f"{n}={p:.2f}" for n, p in named))
    best = max(results, key=lambda n: results[n]["val"]["balanced_accuracy"] - results[n]["val"]["brier"])
    print(f"better on validation (balanced accuracy - Brier): {best}")
    if best != head.name:
        print("the shipped head stays the embedding head: the app scores the embedding it already has")
    splits = {c.path.name: s for c, s in zip(clips, split, strict=True)}
    results["examples"] = demo_check(head, clips, splits, args.cache_dir)
    detector = SpeechDetector(
        encoder_id=encoder_id,
        weights=head.weights,
        bias=head.bias,
        threshold=head.threshold,
        meta={
            "built_by": REBUILD,
            "model": f"logistic regression (C={head.c}, balanced classes) on the L2-normalised clip embedding",
            "sources": {p: LICENCES[p] for p in sorted({c.source for c in sub})},
            "clips": {s: int((labelled & (split == s)).sum()) for s in ("train", "val", "test")},
            "held_out": "test: Tux Paint languages en, el, nl, lt on stamps never trained on; packages "
            + ", ".join(p for p, s in PACKAGE_SPLIT.items() if s == "test")
            + "; espeak-ng phrases "
            + ", ".join(repr(t) for t in TEST_PHRASES)
            + " and hashed phrase groups",
            "figures": results,
        },
    )
    if args.dry_run:
        return 0
    save_detector(detector, args.out)
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes)")
    return 0

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--debs", type=Path, help="a folder with the .debs already downloaded")
    parser.add_argument("--cache-dir", type=Path, default=None, help="embedding cache (default: the project's)")
    parser.add_argument("--out", type=Path, default=DEFAULT_DETECTOR)
    parser.add_argument("--dry-run", action="store_true", help="print the figures, write nothing")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="speech-") as tmp:
        workdir = Path(tmp)
        roots = extract_packages(args.debs.resolve() if args.debs else None, workdir)
        clips = tuxpaint_clips(roots[TUXPAINT])
        for package in PACKAGE_SPLIT:
            clips += effect_clips(package, roots[package])
        clips += espeak_clips(workdir)
        counts = sorted(Counter(c.source for c in clips).items())
        print(f"{len(clips)} clips: " + ", ".join(f"{k}={v}" for k, v in counts))
        return train(clips, args)

if __name__ == "__main__":
    raise SystemExit(main())
