r"""Linear item-based and factorisation baselines: EASE (closed form) and iALS (``implicit``).

Tuned linear models are strong recommenders, often stronger than published graph
models, so ``graphrec bench rec`` reports them beside the trained backbones (rows ``ease``
and ``ials``). Neither is a registry backbone: they fit in one pass, without the trainer.

* :class:`EASE`: Steck, "Embarrassingly Shallow Autoencoders for Sparse Data", WWW 2019.
  An item-item weight matrix ``B`` [items, items] with a zero diagonal, in closed form
  (the paper's eq. 8): ``P = (X^T X + lambda I)^-1``, ``B = I - P diagMat(1 / diag(P))``,
  i.e. ``B[i, j] = -P[i, j] / P[j, j]`` off the diagonal. Scores: ``X[u] @ B``.
* :class:`IALS`: implicit-feedback ALS (Hu, Koren & Volinsky, "Collaborative Filtering for
  Implicit Feedback Datasets", ICDM 2008) through the maintained ``implicit`` library
  (``implicit.cpu.als.AlternatingLeastSquares``, conjugate-gradient solver of Takács et
  al., RecSys 2011), with confidence ``c_ui = 1 + alpha * x_ui``. Scores: inner products of
  the user and item factors.

Both fit from training pairs ``(user ids, item ids)`` with duplicate pairs counted once
(``x_ui`` is binary), and score a block of users at a time (``scores(users) -> [B, items]``),
the contract of :func:`graphrec.metrics.evaluate_topk`'s ``score_fn``.

:class:`EASEParams` and :class:`IALSParams` are their benchmark hyperparameters
(``--set ease.l2=...``, ``--set ials.factors=...``).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
from pydantic import Field
from torch import Tensor

from graphrec.models.params import ModelParams


class EASEParams(ModelParams):
    """Hyperparameters of :class:`EASE` in the benchmark. The default is a starting point for data
    without tuned values (within 4% of the best validation NDCG@20 on ML-100k, ML-1M and Amazon-CD,
    docs/benchmarks-rec.md); tune ``l2`` on the validation split (best: 50 on Amazon-CD, 1000 on ML-1M)."""

    l2: float = Field(200.0, gt=0, description="lambda, the L2 weight on B (Steck 2019, eq. 1)")


class IALSParams(ModelParams):
    """Hyperparameters of :class:`IALS` in the benchmark (the seed is the run's, the threads ``--threads``).
    The defaults are a starting point for data without tuned values (within 11% of the best validation
    NDCG@20 of 128 factors on ML-100k, ML-1M and Amazon-CD, docs/benchmarks-rec.md); tune them."""

    factors: int = Field(128, ge=1, description="latent dimension")
    regularization: float = Field(100.0, ge=0, description="L2 weight on the user and item factors")
    alpha: float = Field(30.0, ge=0, description="confidence c_ui = 1 + alpha of an observed pair")
    iterations: int = Field(15, ge=1, description="ALS sweeps (users, then items)")


class EASEMemoryError(MemoryError):
    """The items x items matrices of EASE would not fit in the available memory."""


def interaction_matrix(users, items, num_users: int, num_items: int) -> sp.csr_matrix:
    """The binary user x item matrix ``X`` [num_users, num_items] (float32 CSR) of training pairs;
    a pair given twice counts once.

    Raises:
        ValueError: lengths differ, or an id is outside ``[0, num_users)`` / ``[0, num_items)``.
    """
    u, i = _ids(users), _ids(items)
    if u.shape != i.shape:
        raise ValueError(f"{u.size} user ids but {i.size} item ids")
    if num_users < 1 or num_items < 1:
        raise ValueError(f"need users and items, got {num_users} users and {num_items} items")
    for name, ids, n in (("user", u, num_users), ("item", i, num_items)):
        if ids.size and (ids.min() < 0 or ids.max() >= n):
            raise ValueError(f"{name} ids must be in [0, {n}); got {ids.min()}..{ids.max()}")
    X = sp.csr_matrix((np.ones(u.size, dtype=np.float32), (u, i)), shape=(num_users, num_items))
    X.sum_duplicates()
    X.data[:] = 1.0
    return X


def _ids(ids) -> np.ndarray:
    """A 1-D int64 numpy array of ids (from a tensor, an array or a list)."""
    return np.asarray(ids.cpu() if isinstance(ids, Tensor) else ids, dtype=np.int64).reshape(-1)


def available_memory() -> int:
    """Bytes this process can still allocate: psutil's available memory, lowered to the
    container's cgroup limit minus its usage where one is set (cgroup v2 or v1)."""
    import psutil

    free = int(psutil.virtual_memory().available)
    for limit_file, usage_file in (("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
                                   ("/sys/fs/cgroup/memory/memory.limit_in_bytes",
                                    "/sys/fs/cgroup/memory/memory.usage_in_bytes")):  # fmt: skip
        with contextlib.suppress(OSError, ValueError):
            limit = Path(limit_file).read_text().strip()
            if limit != "max" and int(limit) < 2**60:
                free = min(free, int(limit) - int(Path(usage_file).read_text().strip()))
            break
    return free


def _blas_threads(num_threads: int | None):
    """A context limiting BLAS (OpenBLAS/MKL) to ``num_threads`` threads; no change when None."""
    if num_threads is None:
        return contextlib.nullcontext()
    from threadpoolctl import threadpool_limits

    return threadpool_limits(num_threads, user_api="blas")


class EASE:
    r"""EASE: a dense item-item model in closed form (Steck, WWW 2019, eq. 8).

    With ``X`` the binary training matrix [users, items] and ``G = X^T X`` (co-occurrence
    counts), ``P = (G + l2 I)^-1`` and ``B = I - P diagMat(1 / diag(P))``: ``B[i, j] = -P[i, j]
    / P[j, j]`` for ``i != j`` and ``diag(B) = 0`` (an item cannot recommend itself).
    ``scores(users) = X[users] @ B``.

    Computation (float32): ``G`` is filled a block of rows at a time (sparse products), factored
    in place by LAPACK's Cholesky (``spotrf``), inverted in place (``spotri``) and turned into
    ``B`` in place, so one items x items float32 matrix lives at a time.

    Memory: ``4 * items^2`` bytes for that matrix (MovieLens-1M, 3,043 items: 37 MB;
    Amazon-CD, 18,395 items: 1.35 GB; Gowalla, 40,981 items: 6.7 GB), plus ``X`` and one
    block of the Gram product. An out-of-place inversion (``torch.linalg.cholesky`` then
    ``cholesky_inverse``) would hold 3 such matrices. :meth:`fit` checks
    :meth:`memory_bytes` against :func:`available_memory` first and raises
    :class:`EASEMemoryError` rather than being killed by the kernel.

    Time: ``items^3`` flops for the Cholesky factorisation and inversion (about ``items^3 / 3``
    and ``2 items^3 / 3``), plus the Gram product (``sum_u n_u^2``).

    Args:
        l2: lambda (> 0), the L2 weight on ``B``, tuned per data set (the paper: 200-1000 on its
            three; here 300 on ML-100k, 1000 on ML-1M, 50 on the sparser Amazon-CD).
        num_threads: BLAS threads for the factorisation (default: the library's choice).
        gram_block: rows of ``X^T X`` computed per sparse block.

    Attributes (after :meth:`fit`):
        B: ``[items, items]`` float32 numpy array, zero diagonal.
        X: ``[users, items]`` binary float32 CSR, the training matrix.
        fit_seconds: wall time of :meth:`fit`.
    """

    #: bytes per matrix entry (float32)
    ENTRY_BYTES = 4

    def __init__(self, l2: float = 200.0, num_threads: int | None = None, gram_block: int = 1024):
        if not l2 > 0:
            raise ValueError(f"l2 must be > 0 (it makes X^T X + l2 I invertible), got {l2}")
        if gram_block < 1:
            raise ValueError(f"gram_block must be >= 1, got {gram_block}")
        self.l2, self.num_threads, self.gram_block = float(l2), num_threads, int(gram_block)
        self.B: np.ndarray | None = None
        self.X: sp.csr_matrix | None = None
        self.fit_seconds = 0.0

    @classmethod
    def memory_bytes(cls, num_items: int, nnz: int = 0, gram_block: int = 1024) -> int:
        """Bytes :meth:`fit` needs beyond what the caller holds: the items x items float32
        matrix (``4 * items^2``), ``X`` and its transpose (``nnz`` entries, 12 bytes each, twice),
        and one sparse block of Gram rows (at most ``gram_block x items`` entries, 12 bytes each)."""
        n = int(num_items)
        return cls.ENTRY_BYTES * n * n + 24 * int(nnz) + 12 * n * min(n, gram_block)

    def check_memory(self, num_items: int, nnz: int = 0) -> None:
        """Raise :class:`EASEMemoryError` when :meth:`memory_bytes` exceeds :func:`available_memory`."""
        need, free = self.memory_bytes(num_items, nnz, self.gram_block), available_memory()
        if need > free:
            gib = 2**30
            raise EASEMemoryError(
                f"EASE on {num_items:,} items needs about {need / gib:.2f} GiB (a dense {num_items:,} x {num_items:,} "
                f"float32 matrix, 4 x items^2 bytes, inverted in place), but only {free / gib:.2f} GiB of memory is "
                "available; reduce the catalogue (e.g. a k-core filter, --set data.min_interactions=N) or use a "
                "machine with more memory")  # fmt: skip

    def fit(self, users, items, num_users: int, num_items: int) -> EASE:
        """Fit ``B`` on training pairs (``users[k]`` interacted with ``items[k]``; int arrays or tensors).

        Raises:
            ValueError: bad ids (see :func:`interaction_matrix`).
            EASEMemoryError: the items x items matrix would not fit in memory (checked first).
            numpy.linalg.LinAlgError: the factorisation failed (not positive definite: it cannot
                happen for l2 > 0 in exact arithmetic).
        """
        from scipy.linalg import lapack

        t0 = time.perf_counter()
        self.check_memory(num_items, len(users))
        X = interaction_matrix(users, items, num_users, num_items)
        n = num_items
        G = np.zeros((n, n), dtype=np.float32)
        Xt = X.T.tocsr()
        for start in range(0, n, self.gram_block):  # rows of G = X^T X, one sparse block at a time
            end = min(start + self.gram_block, n)
            (Xt[start:end] @ X).toarray(out=G[start:end])  # adds into the (zero) rows
        del Xt
        G[np.diag_indices(n)] += np.float32(self.l2)
        with _blas_threads(self.num_threads):
            # G is symmetric: its transpose is a Fortran-ordered view of the same memory, which LAPACK
            # factors and inverts in place (upper triangle in Fortran order = lower triangle of G).
            c, info = lapack.spotrf(G.T, lower=0, clean=0, overwrite_a=1)
            if info != 0:
                raise np.linalg.LinAlgError(
                    f"Cholesky factorisation of X^T X + {self.l2} I failed (info={info})"
                )
            c, info = lapack.spotri(c, lower=0, overwrite_c=1)
            if info != 0:
                raise np.linalg.LinAlgError(f"inverting X^T X + {self.l2} I failed (info={info})")
        if not np.shares_memory(c, G):  # pragma: no cover - the wrapper copied: take its result
            G = np.ascontiguousarray(c.T)
        del c
        _symmetrize_from_lower(G, self.gram_block)  # G is now P
        diag = np.diag(G).copy()
        G /= -diag[None, :]  # B[i, j] = -P[i, j] / P[j, j]
        G[np.diag_indices(n)] = 0.0
        self.B, self.X = G, X
        self.fit_seconds = time.perf_counter() - t0
        return self

    def _check_fitted(self) -> None:
        if self.B is None:
            raise RuntimeError("EASE is not fitted: call fit() first")

    def scores(self, users) -> Tensor:
        """Scores ``X[users] @ B`` of a block of users: ``[len(users), items]`` float32 (sparse rows
        times the dense ``B``; pass blocks of users, as :func:`~graphrec.metrics.evaluate_topk` does,
        never every user at once on a large catalogue).

        Raises:
            RuntimeError: not fitted.
        """
        self._check_fitted()
        idx = _ids(users)
        return torch.from_numpy(np.ascontiguousarray(self.X[idx] @ self.B, dtype=np.float32))

    def score_fn(self) -> Callable[[Tensor], Tensor]:
        """``fn(user ids [B]) -> [B, items]``: :meth:`scores` for :func:`~graphrec.metrics.evaluate_topk`."""
        self._check_fitted()
        return self.scores


def _symmetrize_from_lower(M: np.ndarray, block: int) -> None:
    """Copy the lower triangle of the square ``M`` onto its upper one, in place, a block of rows at a time."""
    n = M.shape[0]
    for start in range(0, n, block):
        end = min(start + block, n)
        M[start:end, end:] = M[end:, start:end].T
        d = M[start:end, start:end]
        d[...] = np.tril(d) + np.tril(d, -1).T


class IALS:
    r"""Implicit-feedback ALS through ``implicit`` (Hu, Koren & Volinsky, ICDM 2008).

    Minimises ``sum_{u,i} c_ui (p_ui - x_u . y_i)^2 + regularization (|x_u|^2 + |y_i|^2)`` over
    every user-item cell, with ``p_ui = 1`` for an observed pair (else 0) and confidence
    ``c_ui = 1 + alpha`` for an observed pair (1 otherwise). ``implicit`` reads the values of
    its input matrix as ``c_ui`` itself (its own ``alpha`` multiplies them), so the matrix
    handed to it holds ``1 + alpha`` and its ``alpha`` stays 1.

    Runs ``implicit.cpu.als.AlternatingLeastSquares`` (float32, conjugate-gradient solver,
    ``iterations`` sweeps) with BLAS limited to one thread during the fit, as ``implicit``
    recommends (its own OpenMP threads, ``num_threads``, do the work; a multi-threaded BLAS
    inside them slows it down and makes it warn). Factors start from ``random_state``
    (uniform in [0, 0.01)), so a fit is reproducible; the solvers are per row, so the result
    does not depend on ``num_threads``.

    Args:
        factors: latent dimension d.
        regularization: L2 weight (>= 0).
        alpha: confidence slope (>= 0).
        iterations: ALS sweeps.
        random_state: seed of the initial factors.
        num_threads: ``implicit``'s threads (0: every core).

    Attributes (after :meth:`fit`):
        user_factors: ``[users, d]`` float32 tensor. item_factors: ``[items, d]`` float32 tensor.
        fit_seconds: wall time of the ALS sweeps. s_per_iteration: ``fit_seconds / iterations``.
    """

    def __init__(self, factors: int = 128, regularization: float = 100.0, alpha: float = 30.0, iterations: int = 15,
                 random_state: int | None = 0, num_threads: int = 0):  # fmt: skip
        if factors < 1 or iterations < 1:
            raise ValueError(f"factors and iterations must be >= 1, got {factors} and {iterations}")
        if regularization < 0 or alpha < 0:
            raise ValueError(
                f"regularization and alpha must be >= 0, got {regularization}, {alpha}"
            )
        if num_threads < 0:
            raise ValueError(f"num_threads must be >= 0 (0: every core), got {num_threads}")
        self.factors, self.iterations = int(factors), int(iterations)
        self.regularization, self.alpha = float(regularization), float(alpha)
        self.random_state, self.num_threads = random_state, int(num_threads)
        self.user_factors: Tensor | None = None
        self.item_factors: Tensor | None = None
        self.fit_seconds = self.s_per_iteration = 0.0

    def fit(self, users, items, num_users: int, num_items: int,
            callback: Callable[[int, float], Any] | None = None) -> IALS:  # fmt: skip
        """Fit the factors on training pairs; ``callback(iteration, seconds)`` after each sweep (1-based).

        Raises:
            ValueError: bad ids (see :func:`interaction_matrix`).
            ImportError: ``implicit`` is not installed (``pip install implicit``).
        """
        X = interaction_matrix(users, items, num_users, num_items)
        # imported before the BLAS limit: the import loads another BLAS (scipy.linalg's), which the
        # limit must cover when implicit checks the BLAS threads (it warns when a model is built)
        from implicit.cpu.als import AlternatingLeastSquares

        X.data[:] = 1.0 + self.alpha  # c_ui of the observed pairs: implicit reads values as c_ui
        with _blas_threads(1):
            model = AlternatingLeastSquares(factors=self.factors, regularization=self.regularization, alpha=1.0,
                                            dtype=np.float32, iterations=self.iterations,
                                            random_state=self.random_state, num_threads=self.num_threads)  # fmt: skip
            hook = (lambda it, sec, _loss: callback(it + 1, sec)) if callback is not None else None
            t0 = time.perf_counter()
            model.fit(X, show_progress=False, callback=hook)
            self.fit_seconds = time.perf_counter() - t0
        self.s_per_iteration = self.fit_seconds / self.iterations
        user_f, item_f = (
            np.ascontiguousarray(f, dtype=np.float32)
            for f in (model.user_factors, model.item_factors)
        )
        self.user_factors, self.item_factors = torch.from_numpy(user_f), torch.from_numpy(item_f)
        return self

    def embeddings(self) -> tuple[Tensor, Tensor]:
        """``(user factors [users, d], item factors [items, d])``: the inner product of a user's and an
        item's row is the score (``graphrec.tasks.link.evaluate(..., embeddings=...)``).

        Raises:
            RuntimeError: not fitted.
        """
        if self.user_factors is None or self.item_factors is None:
            raise RuntimeError("IALS is not fitted: call fit() first")
        return self.user_factors, self.item_factors

    def scores(self, users) -> Tensor:
        """Scores ``[len(users), items]`` of a block of users (inner products)."""
        U, V = self.embeddings()
        idx = torch.as_tensor(users, dtype=torch.long).reshape(-1)
        return U[idx] @ V.t()
