"""Model registry: name -> ``"module:Class"`` plus constructor arguments, imported lazily.

Lazy import keeps ``import recsys.lab`` light (no torch, no implicit) and lets models whose
module is not installed yet stay listed: asking for one gives a clear error, the others run.
``content`` is a per-modality family: ``content:<modality>``; :func:`default_models` expands it
to one model per modality of the dataset.

Each registration also carries its ``search`` space (parameter -> candidate values) for the
validation-only search of :mod:`recsys.lab.search`. The ranges are the general ones a researcher
would try on any implicit-feedback dataset (log-spaced rates and penalties, the usual embedding
sizes, depths and neighbourhood sizes), never values read off one dataset's test figures.
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass, field

from recsys.errors import RecsysError
from recsys.lab.base import Recommender


@dataclass(frozen=True)
class ModelSpec:
    target: str  # "package.module:Class"
    description: str
    kwargs: dict[str, object] = field(default_factory=dict)
    needs_features: bool = False
    per_modality: bool = False  # constructor takes the modality: name is "<family>:<modality>"
    ranks_cold: bool = False  # can rank items with no training interactions above chance
    personalised: bool = True  # False: the same ranking (or noise) for every user
    fuses_modalities: bool = False  # combines several modalities: meaningless with a single one
    # Constructor argument -> candidate values tried by recsys.lab.search (the registered default first).
    search: dict[str, tuple[object, ...]] = field(default_factory=dict)

    @property
    def module(self) -> str:
        return self.target.split(":", 1)[0]


#: Shared candidate ranges of the torch models: Adam step, L2 penalty, embedding size.
_LR = (1e-3, 3e-3, 1e-2)
_REG = (1e-5, 1e-4, 1e-3, 1e-2)
_DIM = (32, 64, 128)
_TORCH_MF = {"dim": _DIM, "lr": _LR, "reg": _REG}
#: Graph models: propagation depth and the content graph's neighbourhood size.
_LAYERS = (1, 2, 3, 4)
_KNN_K = (5, 10, 20, 50)
_HYBRID = {**_TORCH_MF, "content_reg": (1e-5, 1e-4, 1e-3), "free_dropout": (0.0, 0.25, 0.5, 0.75)}

MODELS: dict[str, ModelSpec] = {
    "random": ModelSpec(
        "recsys.lab.models.random:RandomRecommender", "uniform random scores (floor)", personalised=False
    ),
    "popularity": ModelSpec(
        "recsys.lab.models.popularity:Popularity", "most popular training items", personalised=False
    ),
    "itemknn": ModelSpec(
        "recsys.lab.models.itemknn:ItemKNN",
        "item-item cosine on the training matrix",
        search={"k": (10, 20, 50, 100, 200, 500, 1000)},
    ),
    "ease": ModelSpec(
        "recsys.lab.models.ease:EASE",
        "EASE closed-form item-item regression (Steck 2019), lambda tuned on validation; cold items score 0",
        search={"lam": (1.0, 3.0, 10.0, 30.0, 100.0, 300.0, 1000.0, 3000.0, 10000.0, 30000.0)},
    ),
    "implicit-bpr": ModelSpec(
        "recsys.lab.models.reference:ImplicitBPR",
        "reference BPR-MF (implicit library)",
        search={"factors": _DIM, "learning_rate": (0.005, 0.01, 0.02, 0.05), "regularization": (1e-4, 1e-3, 1e-2, 0.1)},
    ),
    "implicit-als": ModelSpec(
        "recsys.lab.models.reference:ImplicitALS",
        "reference ALS (implicit library)",
        search={
            "factors": _DIM,
            "regularization": (0.01, 0.1, 1.0, 10.0, 100.0),
            "alpha": (1.0, 5.0, 10.0, 20.0, 40.0),
        },
    ),
    "bpr": ModelSpec("recsys.lab.models.bpr:BPRMF", "our BPR matrix factorisation (torch)", search=_TORCH_MF),
    "lightgcn": ModelSpec(
        "recsys.lab.models.lightgcn:LightGCN",
        "LightGCN (He et al. 2020): embeddings propagated over the normalised user-item graph, BPR loss (torch)",
        search={**_TORCH_MF, "layers": _LAYERS},
    ),
    "freedom": ModelSpec(
        "recsys.lab.models.freedom:Freedom",
        "FREEDOM (Zhou & Shen 2023): LightGCN with degree-sensitive edge pruning plus a frozen modality kNN "
        "item-item graph; cold items scored through their content neighbours (torch)",
        needs_features=True,
        ranks_cold=True,
        search={
            **_TORCH_MF,
            "ui_layers": _LAYERS,
            "mm_layers": (1, 2),
            "knn_k": _KNN_K,
            "edge_dropout": (0.0, 0.2, 0.5, 0.8),
            "feature_weight": (0.0, 1e-3, 1e-2, 0.1),
        },
    ),
    "lattice": ModelSpec(
        "recsys.lab.models.lattice:Lattice",
        "LATTICE (Zhang et al. 2021): LightGCN plus per-modality item-item kNN graphs learned from projected "
        "features, mixed with the frozen raw-feature graphs, softmax modality weights; cold items scored "
        "through their content neighbours (torch)",
        needs_features=True,
        ranks_cold=True,
        search={**_TORCH_MF, "ui_layers": _LAYERS, "knn_k": _KNN_K, "frozen_share": (0.5, 0.7, 0.9)},
    ),
    "content": ModelSpec(
        "recsys.lab.models.content:ContentKNN",
        "content kNN on one modality",
        needs_features=True,
        per_modality=True,
        ranks_cold=True,
    ),
    "early-fusion": ModelSpec(
        "recsys.lab.models.fusion:EarlyFusion",
        "content kNN on concatenated normalised features, modality weights tuned on validation",
        fuses_modalities=True,
        needs_features=True,
        ranks_cold=True,
    ),
    "early-fusion-uniform": ModelSpec(
        "recsys.lab.models.fusion:EarlyFusion",
        "content kNN on concatenated normalised features, equal modality weights",
        fuses_modalities=True,
        kwargs={"tune": False},
        needs_features=True,
        ranks_cold=True,
    ),
    "late-fusion": ModelSpec(
        "recsys.lab.models.fusion:LateFusion",
        "weighted per-modality content scores, weights tuned on validation",
        fuses_modalities=True,
        needs_features=True,
        ranks_cold=True,
    ),
    "attention": ModelSpec(
        "recsys.lab.models.attention:AttentionFusion",
        "learned per-user/per-item softmax weights over modalities (torch)",
        fuses_modalities=True,
        needs_features=True,
        ranks_cold=True,
        search={**_TORCH_MF, "content_reg": (1e-5, 1e-4, 1e-3), "bias_dropout": (0.0, 0.25, 0.5)},
    ),
    "hybrid-bpr": ModelSpec(
        "recsys.lab.models.hybrid:HybridMF",
        "VBPR-style sigmoid(u.i+b), free + projected multimodal item vector, BPR loss",
        kwargs={"loss": "bpr"},
        needs_features=True,
        ranks_cold=True,
        search=_HYBRID,
    ),
    "hybrid-bce": ModelSpec(
        "recsys.lab.models.hybrid:HybridMF",
        "VBPR-style sigmoid(u.i+b), free + projected multimodal item vector, BCE loss",
        kwargs={"loss": "bce"},
        needs_features=True,
        ranks_cold=True,
        search=_HYBRID,
    ),
}


def split_name(name: str) -> tuple[str, str | None]:
    """``"content:vggish"`` -> ``("content", "vggish")``; ``"bpr"`` -> ``("bpr", None)``
    (a modality subset, ``@a+b``, is not part of the model: see :func:`modality_subset`)."""
    family, sep, arg = name.partition("@")[0].partition(":")
    return family, (arg if sep else None)


def modality_subset(name: str) -> list[str] | None:
    """``"attention@text+vggish"`` -> ``["text", "vggish"]``: the model sees only these modalities'
    features (the ablation that tells whether fusing modalities earns its place); None: all of them."""
    base, sep, subset = name.partition("@")
    if not sep:
        return None
    modalities = [m for m in subset.split("+") if m]
    if not modalities or len(set(modalities)) != len(modalities):
        raise RecsysError(f"Write a modality subset as model@modality[+modality...] without repeats (got {name!r}).")
    if not MODELS.get(split_name(base)[0], ModelSpec("", "")).needs_features:
        raise RecsysError(f"Model {base!r} uses no item features, so {name!r} restricts nothing.")
    return modalities


def spec_for(name: str) -> ModelSpec:
    family, arg = split_name(name)
    spec = MODELS.get(family)
    if spec is None:
        raise RecsysError(
            f"Unknown model {name!r}; available: {', '.join(sorted(MODELS))} (content takes a modality, "
            "e.g. content:vggish)."
        )
    if spec.per_modality and not arg:
        raise RecsysError(f"Model {family!r} needs a modality: write {family}:<modality>.")
    if arg and not spec.per_modality:
        raise RecsysError(f"Model {family!r} takes no ':' argument (got {name!r}).")
    return spec


def is_available(name: str) -> bool:
    """Whether the model's module can be imported (e.g. the torch models are installed)."""
    return importlib.util.find_spec(spec_for(name).module) is not None


def create_model(name: str, **overrides: object) -> Recommender:
    """Instantiate the registered model ``name`` (``overrides`` win over the registered arguments);
    a missing module raises a clear :class:`RecsysError`."""
    spec = spec_for(name)
    module_name, _, class_name = spec.target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name != module_name:
            raise
        raise RecsysError(
            f"Model {name!r} is registered but its module {module_name} is not installed in this checkout."
        ) from exc
    cls = getattr(module, class_name)
    _, arg = split_name(name)
    kwargs = {**spec.kwargs, **overrides}
    model = cls(arg, **kwargs) if spec.per_modality else cls(**kwargs)
    model.name = name
    return model


#: The dashboard's one-click quick run, in order of preference: a floor, a strong closed-form CF
#: baseline (seconds), and the graph model (multimodal FREEDOM with features, else LightGCN).
QUICK_PRESET = ("popularity", "ease", "freedom", "lightgcn")
QUICK_SIZE = 3


def quick_models(modalities: list[str]) -> list[str]:
    """The quick preset's models that apply to a dataset with ``modalities`` and are installed."""
    usable = set(default_models(modalities))
    return [n for n in QUICK_PRESET if n in usable][:QUICK_SIZE]


def default_models(modalities: list[str], include_unavailable: bool = False) -> list[str]:
    """Every registered model, ``content`` expanded per modality; feature models only with features,
    fusion models only with two modalities or more (with one they equal its content model)."""
    names: list[str] = []
    for family, spec in MODELS.items():
        if (spec.needs_features and not modalities) or (spec.fuses_modalities and len(modalities) < 2):
            continue
        expanded = [f"{family}:{m}" for m in modalities] if spec.per_modality else [family]
        names += [n for n in expanded if include_unavailable or is_available(n)]
    return names
