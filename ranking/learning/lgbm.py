"""LightGBM, imported without its scikit-learn layer.

`import lightgbm` imports scikit-learn (and with it most of SciPy) whenever scikit-learn is
installed, only to define its scikit-learn estimator wrappers. This project never uses them: it
trains with `lightgbm.train` and predicts with `Booster`. Hiding scikit-learn for that one import
saves about 70 MB in every API process and worker (docs/performance.md, worker memory); code that
needs scikit-learn itself (training's linear model) still imports it as usual. Import LightGBM
only from here (ruff's TID251 enforces it).
"""

import sys

_hide = "sklearn" not in sys.modules
if _hide:
    sys.modules["sklearn"] = None  # type: ignore[assignment]  # makes `import sklearn` fail
try:
    import lightgbm  # noqa: TID251
finally:
    if _hide:
        del sys.modules["sklearn"]

__all__ = ["lightgbm"]
