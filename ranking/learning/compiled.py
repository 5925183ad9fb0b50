"""LambdaMART trees compiled to native code on the host that serves them.

LightGBM's own predict walks each tree through generic node arrays; the same trees written out as
C branches and compiled predict 1000 candidates several times faster (docs/performance.md), with
the same scores: the generated code applies LightGBM's own decision rules (missing values, the
zero threshold) and adds the trees' outputs in LightGBM's order, in double precision.

Native code is never read from the artifact store: each host compiles the verified model text
with its own C compiler (`MODEL_COMPILER`, default `cc`) into a private cache directory, keyed by
the hash of the generated source, so the workers of one host compile a model once. Until the
library is ready, and whenever it cannot be built (no compiler, a categorical or linear tree),
the scorer predicts with LightGBM: compiling is a speed-up, never a dependency.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import logging
import math
import os
import shutil
import subprocess
import tempfile
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from django.conf import settings

from core.private_dirs import private_directory

logger = logging.getLogger(__name__)

# LightGBM's Tree: decision_type bits and the threshold under which a value counts as zero.
CATEGORICAL_MASK = 1
DEFAULT_LEFT_MASK = 2
MISSING_NONE, MISSING_ZERO, MISSING_NAN = 0, 1, 2
ZERO_THRESHOLD = "((double)1e-35f)"  # LightGBM: const double kZeroThreshold = 1e-35f
CFLAGS = ("-O2", "-shared", "-fPIC", "-fno-fast-math", "-std=c99")
UNUSED_DAYS = 7


class NotCompilable(Exception):
    """The model has a tree this compiler does not handle (categorical splits, linear leaves)."""


@dataclass(frozen=True)
class Tree:
    split_feature: list[int]
    threshold: list[float]
    decision_type: list[int]
    left_child: list[int]
    right_child: list[int]
    leaf_value: list[float]


def parse_model(text: str) -> tuple[int, list[Tree]]:
    """(number of features, trees) from LightGBM's text model format."""
    header, _, body = text.partition("\nTree=")
    fields = dict(line.split("=", 1) for line in header.splitlines() if "=" in line)
    if int(fields.get("num_tree_per_iteration", "1")) != 1:
        raise NotCompilable("more than one tree per iteration")
    if "average_output" in header.splitlines():
        raise NotCompilable("averaged output (random forest)")
    width = int(fields["max_feature_idx"]) + 1
    trees = []
    for block in body.split("\nend of trees")[0].split("\nTree="):
        lines = dict(line.split("=", 1) for line in block.splitlines() if "=" in line)
        if int(lines.get("num_cat", "0")) or int(lines.get("is_linear", "0")):
            raise NotCompilable("categorical splits or linear leaves")

        def ints(name: str, fields: dict[str, str] = lines) -> list[int]:
            return [int(v) for v in fields[name].split()] if name in fields else []

        def floats(name: str, fields: dict[str, str] = lines) -> list[float]:
            return [float(v) for v in fields[name].split()] if name in fields else []

        trees.append(
            Tree(
                split_feature=ints("split_feature"),
                threshold=floats("threshold"),
                decision_type=ints("decision_type"),
                left_child=ints("left_child"),
                right_child=ints("right_child"),
                leaf_value=floats("leaf_value"),
            )
        )
    return width, trees


def _literal(value: float) -> str:
    """A C double literal that reads back as exactly this double (repr round-trips)."""
    if math.isnan(value):
        raise NotCompilable("NaN threshold or leaf value")
    if math.isinf(value):
        return "INFINITY" if value > 0 else "-INFINITY"
    return repr(value)


def _condition(tree: Tree, node: int) -> str:
    """C for 'go left' at a node, as LightGBM's Tree::NumericalDecision decides it."""
    kind = tree.decision_type[node]
    if kind & CATEGORICAL_MASK:
        raise NotCompilable("categorical split")
    value = f"x[{tree.split_feature[node]}]"
    threshold = _literal(tree.threshold[node])
    default = "1" if kind & DEFAULT_LEFT_MASK else "0"
    missing = (kind >> 2) & 3
    if missing == MISSING_NAN:
        return f"(isnan({value}) ? {default} : {value} <= {threshold})"
    zeroed = f"(isnan({value}) ? 0.0 : {value})"
    if missing == MISSING_ZERO:
        return (
            f"((({zeroed}) >= -{ZERO_THRESHOLD} && ({zeroed}) <= {ZERO_THRESHOLD}) ? {default} "
            f": {zeroed} <= {threshold})"
        )
    return f"({zeroed} <= {threshold})"


def _node(tree: Tree, child: int, depth: int) -> list[str]:
    pad = "  " * depth
    if child < 0:
        return [f"{pad}return {_literal(tree.leaf_value[~child])};"]
    return [
        f"{pad}if {_condition(tree, child)} {{",
        *_node(tree, tree.left_child[child], depth + 1),
        f"{pad}}} else {{",
        *_node(tree, tree.right_child[child], depth + 1),
        f"{pad}}}",
    ]


def c_source(width: int, trees: list[Tree]) -> str:
    lines = ["#include <math.h>", ""]
    for index, tree in enumerate(trees):
        lines.append(f"static double tree_{index}(const double *x) {{")
        if not tree.split_feature:  # a single leaf
            lines.append(f"  return {_literal(tree.leaf_value[0])};")
        else:
            lines.extend(_node(tree, 0, 1))
        lines.append("}")
    lines += [
        "",
        "void rankwell_predict(const float *rows, long count, double *out) {",
        f"  double x[{width}];",
        "  for (long r = 0; r < count; r++) {",
        f"    const float *row = rows + r * {width};",
        # LightGBM's predictor keeps a value only if it is NaN or above the zero threshold.
        f"    for (int j = 0; j < {width}; j++) {{",
        "      double v = (double)row[j];",
        f"      x[j] = (isnan(v) || fabs(v) > {ZERO_THRESHOLD}) ? v : 0.0;",
        "    }",
        "    double sum = 0.0;",
        *(f"    sum += tree_{index}(x);" for index in range(len(trees))),
        "    out[r] = sum;",
        "  }",
        "}",
    ]
    return "\n".join(lines) + "\n"


class CompiledTrees:
    """A compiled model: predict(float32 rows x width) -> float64 raw scores."""

    def __init__(self, library: Path, width: int) -> None:
        self._library = ctypes.CDLL(str(library))
        self._predict = self._library.rankwell_predict
        self._predict.restype = None
        self._predict.argtypes = [ctypes.c_void_p, ctypes.c_long, ctypes.c_void_p]
        self.width = width

    def predict(self, features: np.ndarray) -> np.ndarray:
        rows = np.ascontiguousarray(features, dtype=np.float32)
        if rows.ndim != 2 or rows.shape[1] != self.width:
            raise ValueError(f"expected rows of {self.width} features, got {rows.shape}")
        out = np.empty(len(rows), dtype=np.float64)
        self._predict(rows.ctypes.data, len(rows), out.ctypes.data)
        return out


def _private_directory() -> Path:
    """The cache directory, created for this user only; refused if anyone else may write to it."""
    return private_directory(
        settings.COMPILED_MODELS_DIR, "rankwell-models", "not loading code from it"
    )


def compile_model(text: str) -> CompiledTrees:
    """Compile (or find compiled on this host) the model; raises NotCompilable or OSError."""
    compiler = settings.MODEL_COMPILER
    executable = shutil.which(compiler) if compiler else None
    if executable is None:
        raise NotCompilable(f"no C compiler {compiler!r} on this host")
    try:
        width, trees = parse_model(text)
    except (KeyError, ValueError, IndexError) as exc:
        raise NotCompilable(f"model text not understood: {exc!r}") from exc
    source = c_source(width, trees)
    key = hashlib.sha256("\0".join((source, executable, *CFLAGS)).encode()).hexdigest()
    directory = _private_directory()
    library = directory / f"{key}.so"
    if library.exists():
        library.touch()  # in use: kept by the clean-up below
    else:
        _remove_unused(directory)
        with tempfile.TemporaryDirectory(dir=directory) as scratch:
            source_file = Path(scratch) / "model.c"
            source_file.write_text(source)
            built = Path(scratch) / "model.so"
            subprocess.run(  # noqa: S603 (the configured compiler, arguments of our own)
                [executable, *CFLAGS, "-o", str(built), str(source_file), "-lm"],
                check=True,
                capture_output=True,
                timeout=600,
            )
            os.replace(built, library)  # atomic: another worker sees all of it or none
    return CompiledTrees(library, width)


def _remove_unused(directory: Path) -> None:
    """Libraries no process of this host has loaded for a week: models long replaced. (A process
    that has one loaded keeps it: an unlinked file stays mapped.)"""
    cutoff = time.time() - UNUSED_DAYS * 86400
    for old in directory.glob("*.so"):
        with contextlib.suppress(OSError):
            if old.stat().st_mtime < cutoff:
                old.unlink()


class NativeSlot:
    """Where a scorer finds its compiled model: empty until the background compile is done, and
    for good if it failed (the scorer then keeps predicting with LightGBM)."""

    def __init__(self) -> None:
        self.trees: CompiledTrees | None = None
        self._settled = threading.Event()

    def fill(self, future: Future[CompiledTrees]) -> None:
        if not future.cancelled() and future.exception() is None:
            self.trees = future.result()
        self._settled.set()

    def wait(self, timeout: float | None = None) -> bool:
        """True once the compile has finished, whether it succeeded or not."""
        return self._settled.wait(timeout)


# One compile at a time per process, off the request path; a forked child makes its own pool.
_pools: dict[int, ThreadPoolExecutor] = {}
_lock = threading.Lock()


def _build(text: str, label: str | None) -> CompiledTrees:
    try:
        return compile_model(text)
    except NotCompilable as exc:
        logger.info("model %s predicts with LightGBM: %s", label, exc)
        raise
    except (OSError, subprocess.SubprocessError) as exc:
        logger.warning("model %s could not be compiled; LightGBM predicts: %s", label, exc)
        raise


def compile_in_background(text: str, label: str | None) -> NativeSlot:
    slot = NativeSlot()
    with _lock:
        pool = _pools.get(os.getpid())
        if pool is None:
            _pools.clear()
            pool = _pools[os.getpid()] = ThreadPoolExecutor(1, thread_name_prefix="model-compile")
        future = pool.submit(_build, text, label)
    future.add_done_callback(slot.fill)
    return slot
