"""Simple baselines on difference spectra, with the model's mask semantics.

Every baseline is a scikit-learn-style estimator::

    est = RidgeBaseline(bin_widths).fit(pristine, doped, composition, candidates, targets)
    pred = est.predict(pristine, doped, composition, candidates)    # (n, V), 0 off candidates, >= 0

Features (:func:`difference_features`): the defect signature G·(q_doped − q_pristine) of the
per-bin probabilities, summed in ``n_pool`` blocks of adjacent bins; the pristine spectrum
pooled the same way; and the composition-weighted mean of the host elements' physical
descriptors. :class:`RidgeBaseline` and :class:`KNNBaseline` predict the whole vocabulary
vector at once; :class:`GBMBaseline` is per candidate (one row per sample × candidate,
with the candidate's own descriptors and its mass relations to the host), so it can
generalise across elements.
"""

from __future__ import annotations

import numpy as np

from defectnet.elements import DOPANTS


def _pool(x: np.ndarray, n_pool: int) -> np.ndarray:
    """Sum (n, G) into (n, n_pool) blocks of adjacent bins (the last block takes the remainder)."""
    edges = np.linspace(0, x.shape[1], n_pool + 1).astype(int)
    return np.add.reduceat(x, edges[:-1], axis=1)


def difference_features(pristine, doped, composition, bin_widths, *, n_pool: int = 80, host_elements=None):
    """Baseline features, shape (n, 2 n_pool + 8).

    Parameters
    ----------
    pristine, doped : array (n, G)
        Unit-area spectra per meV on the grid with ``bin_widths`` (G,) meV.
    composition : array (n, H)
        Host atomic fractions.
    """
    from defectnet.model.dataset import HOST_ELEMENTS
    from defectnet.model.network import feature_table

    w = np.asarray(bin_widths)
    qp, qd = pristine * w, doped * w
    qp, qd = qp / qp.sum(1, keepdims=True), qd / qd.sum(1, keepdims=True)
    g = qp.shape[1]
    table = feature_table(tuple(host_elements or HOST_ELEMENTS))
    comp = composition / composition.sum(1, keepdims=True)
    return np.hstack([_pool(g * (qd - qp), n_pool), _pool(qp, n_pool), comp @ table]).astype(np.float64)


class _Base:
    def __init__(self, bin_widths, *, n_pool: int = 80, vocabulary=DOPANTS):
        self.bin_widths = np.asarray(bin_widths)
        self.n_pool = n_pool
        self.vocabulary = tuple(vocabulary)

    def get_params(self, deep: bool = True) -> dict:
        return {k: v for k, v in vars(self).items() if not k.endswith("_") and k != "bin_widths"}

    def _x(self, pristine, doped, composition):
        return difference_features(pristine, doped, composition, self.bin_widths, n_pool=self.n_pool)

    @staticmethod
    def _mask(pred, candidates):
        return np.where(candidates, np.clip(pred, 0.0, None), 0.0).astype(np.float32)


class RidgeBaseline(_Base):
    """Multi-output ridge regression from difference-spectrum features to the (V,) concentration vector."""

    def __init__(self, bin_widths, *, alpha: float = 1.0, n_pool: int = 80, vocabulary=DOPANTS):
        super().__init__(bin_widths, n_pool=n_pool, vocabulary=vocabulary)
        self.alpha = alpha

    def fit(self, pristine, doped, composition, candidates, targets):
        from sklearn.linear_model import Ridge
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        x = np.hstack([self._x(pristine, doped, composition), candidates])
        self.model_ = make_pipeline(StandardScaler(), Ridge(alpha=self.alpha)).fit(x, targets)
        return self

    def predict(self, pristine, doped, composition, candidates):
        x = np.hstack([self._x(pristine, doped, composition), candidates])
        return self._mask(self.model_.predict(x), candidates)


class KNNBaseline(_Base):
    """k nearest neighbours (standardised features): mean of the neighbours' concentration vectors."""

    def __init__(self, bin_widths, *, k: int = 5, n_pool: int = 80, vocabulary=DOPANTS):
        super().__init__(bin_widths, n_pool=n_pool, vocabulary=vocabulary)
        self.k = k

    def fit(self, pristine, doped, composition, candidates, targets):
        from sklearn.neighbors import KNeighborsRegressor
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        x = self._x(pristine, doped, composition)
        k = min(self.k, len(x))
        self.model_ = make_pipeline(StandardScaler(), KNeighborsRegressor(n_neighbors=k, weights="distance")).fit(x, targets)
        return self

    def predict(self, pristine, doped, composition, candidates):
        return self._mask(self.model_.predict(self._x(pristine, doped, composition)), candidates)


class GBMBaseline(_Base):
    """Gradient-boosted trees, one row per (sample, candidate): spectrum features + candidate descriptors."""

    def __init__(self, bin_widths, *, max_iter: int = 200, learning_rate: float = 0.1, n_pool: int = 40,
                 vocabulary=DOPANTS, seed: int = 0):
        super().__init__(bin_widths, n_pool=n_pool, vocabulary=vocabulary)
        self.max_iter, self.learning_rate, self.seed = max_iter, learning_rate, seed

    def _rows(self, pristine, doped, composition, candidates):
        from defectnet.model.dataset import HOST_ELEMENTS
        from defectnet.model.network import feature_table

        x = self._x(pristine, doped, composition)
        dop = feature_table(self.vocabulary)  # (V, 8)
        host_lnm = feature_table(HOST_ELEMENTS)[:, 1]
        present = composition > 0
        i, j = np.nonzero(candidates)
        dm = dop[j, 1][:, None] - host_lnm[None, :]  # (rows, H) ln-mass differences
        pres = present[i]
        rel = np.stack([np.where(pres, dm, np.inf).min(1), np.where(pres, dm, -np.inf).max(1),
                        (dm * composition[i]).sum(1) / composition[i].sum(1)], 1)
        return np.hstack([x[i], dop[j], rel]), i, j

    def fit(self, pristine, doped, composition, candidates, targets):
        from sklearn.ensemble import HistGradientBoostingRegressor

        rows, i, j = self._rows(pristine, doped, composition, candidates)
        self.model_ = HistGradientBoostingRegressor(max_iter=self.max_iter, learning_rate=self.learning_rate,
                                                    early_stopping=len(rows) >= 200, random_state=self.seed)
        self.model_.fit(rows, targets[i, j])
        return self

    def predict(self, pristine, doped, composition, candidates):
        rows, i, j = self._rows(pristine, doped, composition, candidates)
        out = np.zeros(candidates.shape, np.float32)
        if len(rows):
            out[i, j] = self.model_.predict(rows)
        return self._mask(out, candidates)


class MeanBaseline(_Base):
    """Predicts, for each candidate element, its mean training concentration as a candidate (the floor)."""

    def fit(self, pristine, doped, composition, candidates, targets):
        cand = np.asarray(candidates, bool)
        total = np.where(cand, targets, 0).sum(0)
        count = cand.sum(0)
        overall = total.sum() / max(count.sum(), 1)
        self.mean_ = np.where(count > 0, total / np.maximum(count, 1), overall)
        return self

    def predict(self, pristine, doped, composition, candidates):
        return self._mask(np.broadcast_to(self.mean_, np.shape(candidates)), candidates)


#: Baseline registry: name -> class.
BASELINES = {"mean": MeanBaseline, "ridge": RidgeBaseline, "knn": KNNBaseline, "gbm": GBMBaseline}
