"""The ``fastrec`` command line: demo, fit, recommend, evaluate, bench, info.

Mistakes a user can make (a missing file, an unknown model or user, a bad
parameter value) print one line, ``fastrec: error: ...``, and exit with 2.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import sys
import time
from typing import Any

import numpy as np

MODELS = {
    "itemknn": ("fastrec.models.knn", "ItemKNN"),
    "userknn": ("fastrec.models.knn", "UserKNN"),
    "sgdmf": ("fastrec.models.sgd", "SGDMF"),
    "als": ("fastrec.models.als", "ALS"),
    "mlp": ("fastrec.models.mlp", "MLPRecommender"),
    "popularity": ("fastrec.models.baseline", "Popularity"),
    "bpr": ("fastrec.models.bpr", "BPR"),
    "ease": ("fastrec.models.ease", "EASE"),
    "svdpp": ("fastrec.models.svdpp", "SVDpp"),
}
BUNDLED = "movielens-small"


class UsageError(Exception):
    """A mistake on the command line: reported in one line, exit status 2."""


def _model_class(name: str):
    import importlib

    key = name.lower()
    if key not in MODELS:
        raise UsageError(f"unknown model {name!r}; choose from {', '.join(MODELS)}")
    module, cls = MODELS[key]
    return getattr(importlib.import_module(module), cls)


def _load_data(spec: str, duplicates: str = "raise"):
    """The data set ``spec`` names; repeated (user, item) pairs handled by ``duplicates``."""
    import fastrec as fr

    if spec == BUNDLED:
        return fr.datasets.movielens_small()  # no repeated pairs
    from .datasets.movielens import FormatError

    if not os.path.exists(spec):
        raise UsageError(f"data path {spec!r} does not exist (or pass {BUNDLED!r})")
    _check_readable(spec, "data path", folder_ok=True)
    try:
        return fr.datasets.load_movielens(spec, duplicates=duplicates)
    except FormatError as first:
        if os.path.isfile(spec):  # not a MovieLens layout: a generic user,item[,rating] CSV
            try:
                return fr.datasets.load_csv(spec, duplicates=duplicates)
            except ValueError as second:
                raise UsageError(f"cannot read {spec!r}: {_cli_hint(second)}") from None
        raise UsageError(str(first)) from None
    except ValueError as exc:  # a MovieLens file with a fault: report that fault
        raise UsageError(_cli_hint(exc)) from None


def _cli_hint(exc: Exception) -> str:
    """The loader's message, its advice on repeated pairs given as the command-line flag."""
    return str(exc).replace(
        "pass duplicates='last', 'mean' or 'sum' to merge",
        "pass --duplicates last, mean or sum to merge",
    )


def _check_readable(path: str, what: str, folder_ok: bool = False) -> None:
    """Refuse, without opening it, a path that is not a regular file (or folder).

    A FIFO would block ``open`` until a writer appears, and a device such as
    ``/dev/zero`` would be read without end.
    """
    import stat

    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        raise UsageError(f"{what} {path!r}: {exc.strerror or exc}") from None
    if stat.S_ISDIR(mode) and folder_ok:
        return
    if not stat.S_ISREG(mode):
        kind = "a folder" if stat.S_ISDIR(mode) else "not a regular file"
        raise UsageError(f"{what} {path!r} is {kind}")
    if not os.access(path, os.R_OK):
        raise UsageError(f"{what} {path!r} is not readable (permission denied)")


def _parse_params(cls, extra: list[str]) -> dict[str, Any]:
    """``--name value`` pairs after the known options become model parameters."""
    params: dict[str, Any] = {}
    valid = cls._param_names()
    i = 0
    while i < len(extra):
        token = extra[i]
        if not token.startswith("--"):
            raise UsageError(f"unexpected argument {token!r}; model parameters go as --name value")
        name = token[2:].replace("-", "_")
        if "=" in name:
            name, value = name.split("=", 1)
            i += 1
        else:
            if i + 1 >= len(extra):
                raise UsageError(f"parameter --{name} needs a value")
            value = extra[i + 1]
            i += 2
        if name not in valid:
            raise UsageError(
                f"{cls.__name__} has no parameter {name!r}; it takes: {', '.join(valid) or 'none'}"
            )
        try:
            params[name] = ast.literal_eval(value)
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            params[name] = value  # a plain string, e.g. --similarity cosine
    return params


def _make_model(name: str, extra: list[str], seed: int | None = None):
    """The model with its ``--name value`` parameters; ``seed`` is its ``random_state``
    when it has one and ``--random_state`` is not given."""
    cls = _model_class(name)
    params = _parse_params(cls, extra)
    if seed is not None and "random_state" in cls._param_names():
        params.setdefault("random_state", seed)
    try:
        return cls(**params)
    except TypeError as exc:
        raise UsageError(f"bad parameters for {cls.__name__}: {exc}") from None


def _fit(model, train, show_progress: bool = True):
    import inspect

    kwargs = {}
    if "show_progress" in inspect.signature(model.fit).parameters:
        kwargs["show_progress"] = show_progress
    return model.fit(train, **kwargs)


def _predicts_ratings(model) -> bool:
    if getattr(model, "implicit", False) is True:
        return False
    if getattr(model, "_is_rating_model", True) is False:  # ranking models (BPR, EASE)
        return False
    return getattr(model, "loss", "mse") == "mse"


# ---------------------------------------------------------------- commands
def cmd_info(args, extra) -> int:
    import fastrec as fr

    fr.show_config()
    return 0


def cmd_fit(args, extra) -> int:
    model = _make_model(args.model, extra, seed=args.seed)
    X = _load_data(args.data, args.duplicates)
    t0 = time.perf_counter()
    _fit(model, X, show_progress=not args.quiet)
    elapsed = time.perf_counter() - t0
    model.save(args.out)
    print(f"fitted {type(model).__name__} on {X} in {elapsed:.2f} s; saved to {args.out}")
    return 0


def cmd_recommend(args, extra) -> int:
    import fastrec as fr

    if extra:
        raise UsageError(f"unexpected arguments {' '.join(extra)}")
    if not os.path.exists(args.model):
        raise UsageError(f"model file {args.model!r} does not exist")
    _check_readable(args.model, "model file")
    try:
        model = fr.load(args.model)
    except Exception as exc:  # any fault of the file is the user's to fix: one line
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise UsageError(
            f"cannot load model file {args.model!r}: {type(exc).__name__}"
            + (f": {detail}" if detail else "")
        ) from None
    if args.n < 1:
        raise UsageError(f"-n must be >= 1, got {args.n}")
    user: Any = args.user
    ids = model.user_ids_
    if ids.dtype.kind in "iu":
        try:
            user = int(user)
            if not -(2**63) <= user < 2**63:  # no integer id lies outside int64
                raise ValueError
        except ValueError:
            raise UsageError(
                f"unknown user {args.user!r} (this model's user ids are integers)"
            ) from None
    known = bool(np.any(ids == user))
    if not known and not args.allow_unknown:
        raise UsageError(
            f"unknown user {args.user!r}: not in the model's training data "
            "(pass --allow-unknown to get the most popular items)"
        )
    items, scores = model.recommend([user], n=args.n)  # n beyond the catalogue is clamped
    titles = {}
    if args.titles:
        if args.titles != BUNDLED:
            if not os.path.exists(args.titles):
                raise UsageError(f"titles path {args.titles!r} does not exist")
            _check_readable(args.titles, "titles path", folder_ok=True)
        titles = fr.datasets.movie_titles(None if args.titles == BUNDLED else args.titles)
    print(f"top {items.shape[1]} for user {user}:")
    for rank, (item, score) in enumerate(zip(items[0].tolist(), scores[0].tolist()), 1):
        if item is None or score == float("-inf"):
            continue
        title = titles.get(item, "")
        print(f"{rank:>3}. {item!s:<10} {score:>9.4f}  {title}")
    return 0


def cmd_evaluate(args, extra) -> int:
    import fastrec as fr

    model = _make_model(args.model, extra, seed=args.seed)
    X = _load_data(args.data, args.duplicates)
    metrics = ["precision", "recall", "ndcg", "map", "hit_rate", "mrr", "coverage"]
    if _predicts_ratings(model):
        metrics += ["rmse", "mae"]
    if args.protocol == "random":
        splits = [fr.split.random_split(X, test_size=args.test_size, seed=args.seed)]
    elif args.protocol == "loo":
        by = "time" if X.timestamps is not None else "random"
        splits = [fr.split.leave_one_out(X, by=by, seed=args.seed)]
    else:
        splits = list(fr.split.kfold(X, n_splits=args.folds, seed=args.seed))
    results = []
    for fold, (train, test) in enumerate(splits):
        t0 = time.perf_counter()
        _fit(model, train, show_progress=not args.quiet)
        fit_s = time.perf_counter() - t0
        res = fr.evaluate(
            model,
            train,
            test,
            metrics=metrics,
            k=args.k,
            fit=False,
            relevance_threshold=args.relevance_threshold,
        )
        res["fit_s"] = fit_s
        results.append(res)
        if len(splits) > 1:
            print(
                f"fold {fold + 1}/{len(splits)}: "
                + ", ".join(f"{k}={v:.4f}" for k, v in res.items())
            )
    keys = [k for k in results[0] if k != "n_users"]
    mean = {k: float(np.mean([r[k] for r in results])) for k in keys}
    print(f"{type(model).__name__} on {X}, protocol {args.protocol}, k={args.k}")
    for k, v in mean.items():
        label = (
            f"{k}@{args.k}" if k in ("precision", "recall", "ndcg", "map", "hit_rate", "mrr") else k
        )
        print(f"  {label:<14} {v:.4f}")
    if args.json:
        protocol = {
            "split": args.protocol,
            "test_size": args.test_size if args.protocol == "random" else None,
            "folds": args.folds if args.protocol == "kfold" else None,
            "seed": args.seed,
            "relevance_threshold": args.relevance_threshold,
            "k": args.k,
            "exclude_seen": True,
        }
        data = {"path": args.data, "n_users": X.n_users, "n_items": X.n_items, "nnz": X.nnz}
        record = {
            **mean,
            "model": type(model).__name__,
            "params": {k: _jsonable(v) for k, v in model.get_params().items()},
            "data": data,
            "protocol": protocol,
        }
        with open(args.json, "w") as fh:
            json.dump(record, fh, indent=2)
    return 0


def _jsonable(value: Any) -> Any:
    """A model parameter as JSON: numpy scalars and dtypes by value and name."""
    if isinstance(value, tuple | list):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.dtype) or (isinstance(value, type) and issubclass(value, np.generic)):
        return np.dtype(value).name
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return repr(value)


def cmd_bench(args, extra) -> int:
    from . import benchmarks

    if extra:
        raise UsageError(f"unexpected arguments {' '.join(extra)}")
    if not args.scale > 0 or args.scale == float("inf"):
        raise UsageError(f"--scale must be a finite number > 0, got {args.scale}")
    from ._validation import check_num_threads

    try:
        check_num_threads(args.threads)
    except ValueError as exc:
        raise UsageError(f"--threads: {exc}") from None
    data_seeds = _parse_data_seeds(args.data_seeds)
    families = args.only.split(",") if args.only else list(benchmarks.FAMILIES)
    for f in families:
        if f not in benchmarks.FAMILIES:
            raise UsageError(
                f"unknown benchmark family {f!r}; choose from {', '.join(benchmarks.FAMILIES)}"
            )
    missing, needed = _missing_peers(families)
    if not args.fresh and needed and len(missing) == len(needed):
        # fastrec's own times are still measured; say at once that no ratio will come
        print(
            f"fastrec bench: no peer library to compare with is installed "
            f"({', '.join(missing)}): the table has fastrec's times only; "
            "pip install 'fastrec[bench]' adds the peers",
            file=sys.stderr,
        )
    log = (lambda s: None) if args.quiet else (lambda s: print(s, file=sys.stderr))
    from .benchmarks import environment

    if args.fresh:  # the same command in a throwaway clone, installed with pip install .
        return environment.run_fresh(
            _bench_args(args), args.out, dry_run=args.dry_run, log=log, keep=args.keep_fresh
        )
    if args.dry_run:
        raise UsageError("--dry-run goes with --fresh")
    load_before = environment.load_average()
    started = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())
    t_start = time.perf_counter()
    rows = benchmarks.run(
        families,
        scale=args.scale,
        num_threads=args.threads,
        quick=args.quick,
        log=log,
        data_seeds=data_seeds,
    )
    print(benchmarks.format_table(rows))
    if missing:
        print(
            f"(not installed: {', '.join(missing)}; their rows have no peer time: "
            "pip install 'fastrec[bench]' adds them)"
        )
    os.makedirs(args.out, exist_ok=True)
    from ._config import config

    machine = environment.machine_info()
    machine["load_average_before"] = load_before
    machine["load_average_after"] = machine.pop("load_average")
    payload = {
        "machine": machine,
        "config": config(),
        "versions": environment.library_versions(),
        "commit": environment.source_commit(),
        "started": started,
        "seconds": round(time.perf_counter() - t_start, 1),
        "args": vars(args),
        "rows": rows,
    }
    with open(os.path.join(args.out, "bench.json"), "w") as fh:
        json.dump(payload, fh, indent=2, default=str)
    chart = os.path.join(args.out, "bench.png")
    if benchmarks.plot(rows, chart):
        print(f"wrote {os.path.join(args.out, 'bench.json')} and {chart}")
    else:
        print(f"wrote {os.path.join(args.out, 'bench.json')} (no chart: matplotlib not installed)")
    return 0


# The [bench] extra's peer libraries each benchmark family compares with
# (module -> pip name). MLP's peer, PyTorch, is not in the extra: without it the
# family still measures fastrec's throughput and compares the MLP with SGDMF / ALS.
_BENCH_PEERS = {
    "similarity": {"implicit": "implicit", "sparse_dot_topn": "sparse-dot-topn"},
    "knn": {"surprise": "scikit-surprise"},
    "sgd": {"libmf": "libmf", "surprise": "scikit-surprise"},
    "als": {"implicit": "implicit", "surprise": "scikit-surprise"},
    "topk": {"implicit": "implicit"},
    "svdpp": {"surprise": "scikit-surprise"},
}


def _missing_peers(families: list[str]) -> tuple[list[str], list[str]]:
    """(missing, needed): pip names of the peers the families compare with."""
    import importlib.util

    needed: dict[str, str] = {}
    for family in families:
        needed.update(_BENCH_PEERS.get(family, {}))
    missing = []
    for module, package in needed.items():
        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):  # a broken install, or blocked in sys.modules
            found = False
        if not found and package not in missing:
            missing.append(package)
    return missing, sorted(set(needed.values()))


def _parse_data_seeds(text: str) -> tuple[int, ...]:
    """``--data-seeds``: distinct ints >= 0, comma-separated."""
    seeds = []
    for position, part in enumerate(text.split(",")):
        try:
            seed = int(part.strip())
        except ValueError:
            seed = -1
        if seed < 0:
            raise UsageError(
                f"--data-seeds: entry {position} ({part.strip()!r}) is not an integer >= 0"
            )
        if seed in seeds:
            raise UsageError(f"--data-seeds: entry {position} repeats seed {seed}")
        seeds.append(seed)
    return tuple(seeds)


def _bench_args(args) -> list[str]:
    """The options of this ``fastrec bench`` run to pass on to a fresh one (not --out)."""
    out = ["--scale", repr(args.scale), "--threads", str(args.threads)]
    if args.data_seeds != "0":
        out += ["--data-seeds", args.data_seeds]
    if args.quick:
        out.append("--quick")
    if args.only:
        out += ["--only", args.only]
    if args.quiet:
        out.append("--quiet")
    return out


def cmd_demo(args, extra) -> int:
    import fastrec as fr

    if extra:
        raise UsageError(f"unexpected arguments {' '.join(extra)}")
    X = fr.datasets.movielens_small()
    titles = fr.datasets.movie_titles()
    train, test = fr.split.random_split(X, test_size=0.2, seed=0)
    print(f"MovieLens ml-latest-small (bundled): {X}")
    print(f"80/20 random split (seed 0): train {train.nnz} ratings, test {test.nnz} ratings\n")
    specs = [
        ("ItemKNN", "itemknn", {"k": 40}),
        ("UserKNN", "userknn", {"k": 40}),
        ("Popularity", "popularity", {}),
        ("SGDMF", "sgdmf", {"factors": 64, "epochs": 20, "random_state": 0}),
        ("ALS (implicit)", "als", {"factors": 64, "iterations": 15, "random_state": 0}),
        ("MLPRecommender", "mlp", {"epochs": 10 if not args.quick else 2, "random_state": 0}),
        ("BPR", "bpr", {"iterations": 100 if not args.quick else 20, "random_state": 0}),
        ("EASE", "ease", {"l2": 500.0}),
        ("SVDpp", "svdpp", {"epochs": 20 if not args.quick else 5, "random_state": 0}),
    ]
    if args.quick:
        specs[3][2]["epochs"] = 5
        specs[4][2]["iterations"] = 5
        # EASE inverts a dense item x item matrix (9724 x 9724 here): seconds, not quick
        specs = [spec for spec in specs if spec[1] != "ease"]
        print("(--quick leaves out EASE: its fit inverts a dense 9724 x 9724 matrix)\n")
    rows = []
    fitted = {}
    for label, key, params in specs:
        try:
            model = _model_class(key)(**params)
        except (ImportError, AttributeError) as exc:
            print(f"{label}: not available ({exc})")
            continue
        print(f"fitting {label} ...", flush=True)
        t0 = time.perf_counter()
        _fit(model, train, show_progress=not args.quiet)
        fit_s = time.perf_counter() - t0
        metrics = ["precision", "recall", "ndcg", "map"]
        if _predicts_ratings(model):
            metrics += ["rmse", "mae"]
        res = fr.evaluate(model, train, test, metrics=metrics, k=10, fit=False)
        rows.append((label, fit_s, res))
        fitted[label] = model
    print()
    head = (
        f"{'model':<16} {'fit s':>7} {'RMSE':>7} {'MAE':>7} {'P@10':>7} {'R@10':>7} "
        f"{'NDCG@10':>8} {'MAP@10':>7}"
    )
    print(head)
    print("-" * len(head))
    for label, fit_s, r in rows:

        def f(k, w=7, r=r):
            return f"{r[k]:>{w}.4f}" if k in r else f"{'-':>{w}}"

        print(
            f"{label:<16} {fit_s:>7.2f} {f('rmse')} {f('mae')} {f('precision')} {f('recall')} "
            f"{f('ndcg', 8)} {f('map')}"
        )
    print(
        "(RMSE/MAE on held-out ratings; ranking metrics over all items, seen ones excluded. "
        "ALS, BPR and EASE are trained as implicit feedback, so they have no rating error. The kNN "
        "models rank by the neighbourhood sum (ranking='sum') and predict with the "
        "mean-centred formula; Popularity is the non-personalised reference.)"
    )
    pop = next((r["precision"] for label, _, r in rows if label == "Popularity"), None)
    if pop is not None:
        rating = {label: _predicts_ratings(fitted[label]) for label, _, _ in rows}
        below = [label for label, _, r in rows if r["precision"] < pop]
        above = [label for label, _, r in rows if r["precision"] > pop]
        if any(rating[label] for label in below):
            print(
                "Below Popularity's P@10 here: "
                f"{', '.join(label for label in below if rating[label])}. Models fitted to "
                "rating values rank by predicted rating, which favours items rated by few "
                "users: use them for rating prediction"
                + (f", and {', '.join(above)} for top-N lists." if above else ".")
            )
        others = [label for label in below if not rating[label]]
        if others:
            print(
                f"Also below Popularity's P@10: {', '.join(others)}"
                + (" (--quick trains fewer iterations than the defaults)." if args.quick else ".")
            )
    if fitted:
        user = 1
        label = "ALS (implicit)" if "ALS (implicit)" in fitted else next(iter(fitted))
        model = fitted[label]
        ids, scores = model.recommend([user], n=10)
        seen = X.matrix[X.user_index(user)]
        print(f"\nuser {user} rated {seen.nnz} movies; top rated by them:")
        top = np.argsort(-seen.toarray()[0], kind="stable")[:5]
        for i in top:
            print(f"   {seen.toarray()[0][i]:.1f}  {titles.get(int(X.item_ids[i]), X.item_ids[i])}")
        print(f"top 10 recommendations for user {user} from {label}:")
        for rank, item in enumerate(ids[0].tolist(), 1):
            print(f"  {rank:>2}. {titles.get(item, item)}")
    return 0


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one line (``fastrec <cmd>: error: ...``), status 2."""

    def error(self, message: str):  # type: ignore[override]
        text = " ".join(message.split())
        print(f"{self.prog}: error: {text} (see {self.prog} --help)", file=sys.stderr)
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="fastrec", description="fastrec: fast recommender kernels")
    sub = p.add_subparsers(dest="command", required=True)
    data_help = (
        f"{BUNDLED} (the bundled ml-latest-small), a MovieLens folder or ratings file, "
        "or a user,item[,rating[,timestamp]] CSV"
    )
    duplicates_help = (
        "what to do with a (user, item) pair that occurs more than once in the data: "
        "raise (an error, the default), or merge the repeats keeping the last rating, "
        "their mean or their sum"
    )

    d = sub.add_parser("demo", help="train every model on the bundled MovieLens data")
    d.add_argument("--quick", action="store_true", help="fewer epochs, and no EASE")
    d.add_argument("--quiet", action="store_true", help="no progress bars")
    d.set_defaults(func=cmd_demo)

    f = sub.add_parser(
        "fit",
        help="fit a model and save it",
        epilog="Model parameters follow as --name value, e.g. --factors 64.",
    )
    f.add_argument("--model", required=True, help=f"one of {', '.join(MODELS)}")
    f.add_argument("--data", required=True, help=data_help)
    f.add_argument("--out", required=True, help="where to write the model (.npz)")
    f.add_argument(
        "--seed",
        type=int,
        default=None,
        help="random_state of a model that has one (unless --random_state is given); "
        "default: the model's own (unseeded)",
    )
    f.add_argument(
        "--duplicates",
        choices=("raise", "last", "mean", "sum"),
        default="raise",
        help=duplicates_help,
    )
    f.add_argument("--quiet", action="store_true", help="no progress bars")
    f.set_defaults(func=cmd_fit)

    r = sub.add_parser("recommend", help="top-n items for a user from a saved model")
    r.add_argument("--model", required=True, help="a file written by fastrec fit")
    r.add_argument("--user", required=True, help="the raw user id, as in the training data")
    r.add_argument("-n", type=int, default=10, help="how many items (default 10)")
    r.add_argument("--titles", help=f"MovieLens folder with movie titles, or {BUNDLED}")
    r.add_argument(
        "--allow-unknown",
        action="store_true",
        help="answer an unknown user with the most popular items",
    )
    r.set_defaults(func=cmd_recommend)

    e = sub.add_parser(
        "evaluate",
        help="fit and evaluate a model under a protocol",
        epilog="Model parameters follow as --name value, e.g. --factors 64.",
    )
    e.add_argument("--model", required=True, help=f"one of {', '.join(MODELS)}")
    e.add_argument("--data", required=True, help=data_help)
    e.add_argument(
        "--protocol",
        choices=("random", "loo", "kfold"),
        default="random",
        help="random: one random split (--test-size); loo: leave the last rating of each "
        "user out (a random one without timestamps); kfold: --folds folds, averaged",
    )
    e.add_argument("--k", type=int, default=10, help="cutoff of the ranking metrics")
    e.add_argument(
        "--test-size", type=float, default=0.2, help="share of the ratings held out (random)"
    )
    e.add_argument("--folds", type=int, default=5, help="number of folds (kfold)")
    e.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seeds the split and the model (its random_state, unless --random_state is "
        "given), so two runs give the same figures",
    )
    e.add_argument(
        "--relevance-threshold",
        type=float,
        default=None,
        help="only held-out ratings at least this count as relevant (default: all)",
    )
    e.add_argument(
        "--duplicates",
        choices=("raise", "last", "mean", "sum"),
        default="raise",
        help=duplicates_help,
    )
    e.add_argument(
        "--json",
        help="also write the metrics to this JSON file, with the model, its parameters, "
        "the data and the protocol",
    )
    e.add_argument("--quiet", action="store_true", help="no progress bars")
    e.set_defaults(func=cmd_evaluate)

    b = sub.add_parser("bench", help="compare with the peers (implicit, surprise, libmf, ...)")
    b.add_argument("--quick", action="store_true", help="small shapes: about 2 minutes on 2 cores")
    b.add_argument("--scale", type=float, default=1.0, help="1.0 = the ML-20M shape")
    b.add_argument(
        "--threads", type=int, default=2, help="threads for fastrec and the peers (default 2)"
    )
    b.add_argument(
        "--only",
        help="comma-separated families: "
        + ",".join(("similarity", "knn", "sgd", "als", "mlp", "topk", "rerank", "svdpp")),
    )
    b.add_argument(
        "--data-seeds",
        default="0",
        help="comma-separated seeds of the synthetic data, e.g. 0,1,2,3: the similarity "
        "family runs on the first and times Pearson against implicit again on each other "
        "one; the other families use seed 0 (default: 0)",
    )
    b.add_argument("--out", default="bench_results", help="folder for bench.json and bench.png")
    b.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    b.add_argument(
        "--fresh",
        action="store_true",
        help="clone this checkout into a temporary folder, install it there with "
        "'pip install .' in a new venv (--system-site-packages), run the same bench "
        "with it, then delete the folder",
    )
    b.add_argument("--dry-run", action="store_true", help="with --fresh: print the commands only")
    b.add_argument(
        "--keep-fresh",
        action="store_true",
        help="with --fresh: keep the temporary folder (to look into a failed install)",
    )
    b.set_defaults(func=cmd_bench)

    i = sub.add_parser("info", help="version, backends, OpenMP, threads, BLAS")
    i.set_defaults(func=cmd_info)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and args.command not in ("fit", "evaluate"):
        parser.error(f"unrecognised arguments: {' '.join(extra)}")
    try:
        return int(args.func(args, extra) or 0)
    except UsageError as exc:
        print(f"fastrec: error: {' '.join(str(exc).split())}", file=sys.stderr)
    except (ValueError, OSError, OverflowError, MemoryError) as exc:
        text = " ".join(str(exc).split()) or type(exc).__name__
        print(f"fastrec: error: {text}", file=sys.stderr)
    except KeyboardInterrupt:
        print("fastrec: interrupted", file=sys.stderr)
        return 130
    return 2


if __name__ == "__main__":
    sys.exit(main())
