"""The conventions every model shares: parameter checks, divergence error, fold-in contract."""

from __future__ import annotations

import importlib
import inspect

import numpy as np
import pytest

import fastrec as fr
from fastrec.models.base import _REGISTRY, DivergenceError, Recommender, _import_model_modules


def _ratings(seed=0, n_users=30, n_items=20, density=0.4):
    rng = np.random.default_rng(seed)
    mask = rng.random((n_users, n_items)) < density
    users, items = np.nonzero(mask)
    values = rng.integers(1, 6, size=users.shape[0]).astype(np.float64)
    return fr.Interactions.from_arrays(users, items, values)


def _model_classes():
    _import_model_modules()
    return sorted(
        (cls for cls in _REGISTRY.values() if not cls.__name__.startswith("_")),
        key=lambda cls: cls.__name__,
    )


@pytest.mark.parametrize("cls", _model_classes(), ids=lambda cls: cls.__name__)
def test_every_model_validates_its_parameters_in_one_method(cls):
    # one idiom: _validated_params returns the checked values as a dict; a
    # model with parameters defines its own, one without inherits the empty one
    model = cls()
    params = model._validated_params()
    assert isinstance(params, dict)
    if cls._param_names():
        assert "_validated_params" in {
            name for klass in cls.__mro__ if klass is not Recommender for name in vars(klass)
        }
    for name in ("_check_params", "_check_loaded_params"):
        assert not hasattr(model, name)


@pytest.mark.parametrize(
    "module, old",
    [
        ("fastrec.models.als", "NonFiniteFactorsError"),
        ("fastrec.models.mlp", "TrainingDivergedError"),
    ],
)
def test_old_error_names_are_deprecated_aliases_of_divergence_error(module, old):
    mod = importlib.import_module(module)
    with pytest.warns(DeprecationWarning, match=f"{old} is deprecated"):
        alias = getattr(mod, old)
    assert alias is DivergenceError  # except OldName still catches what the models raise
    assert issubclass(DivergenceError, ValueError) and issubclass(
        DivergenceError, FloatingPointError
    )
    assert fr.DivergenceError is DivergenceError
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        mod.Nope  # noqa: B018


@pytest.mark.parametrize(
    "make",
    [
        lambda: fr.SGDMF(factors=3, epochs=2, learning_rate=1e30, random_state=0, num_threads=1),
        lambda: fr.SVDpp(factors=3, epochs=2, learning_rate=1e30, random_state=0, num_threads=1),
        lambda: fr.BPR(factors=3, iterations=3, learning_rate=1e30, random_state=0, num_threads=1),
        lambda: fr.MLPRecommender(
            embedding_dim=3, hidden=(4,), epochs=2, learning_rate=1e30, random_state=0
        ),
    ],
    ids=["SGDMF", "SVDpp", "BPR", "MLPRecommender"],
)
def test_every_diverging_model_raises_divergence_error_the_same_way(make):
    model = make()
    with pytest.raises(DivergenceError, match=rf"^{type(model).__name__} diverged in epoch \d+: "):
        model.fit(_ratings(1))
    assert not getattr(model, "_fitted", False)


def test_recalculate_user_returns_the_factor_vector_in_every_model():
    X = _ratings(2)
    items, ratings = X.item_ids[[0, 2, 5]], [4.0, 2.0, 5.0]
    models = {
        "ALS": fr.ALS(factors=4, iterations=2, random_state=0, num_threads=1),
        "ALS_biased": fr.ALS(factors=4, iterations=2, implicit=False, random_state=0),
        "SGDMF": fr.SGDMF(factors=4, epochs=2, random_state=0, num_threads=1),
        "SVDpp": fr.SVDpp(factors=4, epochs=2, random_state=0, num_threads=1),
        "BPR": fr.BPR(factors=4, iterations=2, random_state=0, num_threads=1),
    }
    for name, model in models.items():
        model.fit(X)
        args = (items,) if name == "BPR" else (items, ratings)
        vec = model.recalculate_user(*args)
        assert isinstance(vec, np.ndarray) and vec.shape == (4,), name
        assert vec.dtype == model.item_factors_.dtype, name
        vec2, bias = model.recalculate_user(*args, return_bias=True)
        np.testing.assert_array_equal(vec, vec2)
        assert isinstance(bias, float), name
        if name in ("ALS", "BPR"):
            assert bias == 0.0  # no user bias in these models
        assert "return_bias" in inspect.signature(model.recalculate_user).parameters


def test_similarity_and_kind_are_one_option_with_one_message():
    X = _ratings(3)
    with pytest.raises(ValueError) as by_kind:
        fr.similarity(X, kind="jaccard")
    with pytest.raises(ValueError) as by_model:
        fr.ItemKNN(similarity="jaccard").fit(X)
    kind_msg, model_msg = str(by_kind.value), str(by_model.value)
    assert kind_msg.startswith("kind must be one of") and model_msg.startswith("similarity must")
    assert kind_msg.replace("kind", "similarity", 1) == model_msg
    # pearson_baseline needs a model's baselines: the models take it, fr.similarity refuses it
    fr.ItemKNN(similarity="pearson_baseline").fit(X)
    with pytest.raises(ValueError, match="needs their fitted baselines"):
        fr.similarity(X, kind="pearson_baseline")
    from fastrec.models.knn import SIMILARITIES
    from fastrec.neighbours import KINDS

    assert set(KINDS) < set(SIMILARITIES)
