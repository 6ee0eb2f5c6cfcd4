"""Projection-weighted CCA (PWCCA) from sufficient statistics.

The protocol is the paper's reference code (layerwise-analysis), re-implemented
(docs/design.md, "CCA and MI"):

* fit on (x: n x d1, y: n x d2): covariance with ddof 1; ``Sxx /= max|Sxx|``,
  ``Syy /= max|Syy|``, ``Sxy /= sqrt(xmax * ymax)``; drop dimensions whose rescaled
  variance is below eps_x (eps_y); add eps I; inverse square roots by eigendecomposition;
  SVD of ``Sxx^-1/2 Sxy Syy^-1/2``; projections ``u^T Sxx^-1/2`` and ``v^T Syy^-1/2``;
  each direction's sign fixed by the svd_flip rule (largest-magnitude entry of each left
  singular vector positive).
* score on any rows: centre each view with those rows' own means, project the first
  k = min(kept dims) directions, correlation per direction; weights from the view with
  fewer kept dimensions (y on a tie): add the first k kept dimensions' means back to the
  projections, QR, ``sum_j |q_i^T a_j|`` over the first k kept raw dimensions a_j,
  normalised; score = sum(weight * correlation).

Why sufficient statistics: everything above is a function of per-row-set sums and cross
products.  Each part's ``n``, ``sum [x y]`` and ``[x y]^T [x y]`` are accumulated ONCE
(float64, on CUDA when available); the covariance of "all parts but two" is a sum of part
statistics, and scoring a part needs only that part's statistics — including the QR
weights: with ``E = [1 | Xc P^T]`` (its Gram matrix is block diagonal because Xc is
centred) and ``M = E C``, ``C = [m^T; I]``, the Q of ``M`` is ``F Q'`` where ``E = F L`` and
``L C = Q' R'`` is a small (k+1) x k QR, so ``Q^T A = Q'^T L^-T E^T A`` comes from the
part's scatter matrix and means alone (no n x k QR; exact in exact arithmetic, and better
conditioned than a Cholesky of ``M^T M`` when the means are large).  A layer therefore
costs one pass over its data however many splits and epsilons are tried, and the
per-view eigendecomposition is shared by every epsilon of a split (adding eps I only
shifts the eigenvalues).

Stability (a deliberate, documented difference from the reference): when a view is
exactly rank-deficient after centring — one-hot labels sum to 1, so their centred
covariance has an exact null direction — the reference whitens that direction with
``1/sqrt(eps + float noise)`` and its last canonical direction is pure rounding noise:
its correlation takes a random value that a 1e-13 perturbation of the data changes.
Here each view's kept covariance is eigendecomposed and eigen-directions with eigenvalue
below ``null_tol * max eigenvalue`` (default 1e-10, five orders above float64 rounding of
a covariance, so only directions that are null up to rounding — or practically null —
qualify) are removed before the eps regularisation, so only
``min(rank_x, rank_y)`` directions are fitted.  The remaining ones of the reference's
k = min(kept dims) directions are the null directions: the view is constant along them,
so their correlation is 0 (not rounding noise) and their projection is zero — in the QR
weights their column is just the added-back mean, exactly the reference's column without
the noise, so they keep the share of weight the reference gives them.  Result on the
reference's one-hot case: within ~1e-2 of its (noisy) numbers and unchanged to ~1e-14
under 1e-12 perturbations.  Well-conditioned views have no such eigenvalue, so their
numbers are the reference's to rounding.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from tqdm.auto import tqdm

from bench.extract import pick_device

#: Relative eigenvalue threshold below which a direction of a view is an exact null
#: direction (see module docstring).
NULL_TOL = 1e-10

#: The reference grid {1e-11, 1e-10, 1e-9}^2, eps_x outer and eps_y inner, ascending.
#: The cross-validation keeps the FIRST best dev score, so on a tie the smallest
#: regularisation wins.
DEFAULT_EPS_GRID: tuple[tuple[float, float], ...] = tuple(
    itertools.product((1e-11, 1e-10, 1e-9), (1e-11, 1e-10, 1e-9))
)

#: Tried in order, as (e, e), only when every grid epsilon failed for a split.
FALLBACK_EPS: tuple[float, ...] = (1e-8, 1e-7, 1e-6, 1e-5, 1e-4, 1e-3)

_CHUNK_ROWS = 16384
_SHIFT_ROWS = 4096


class PWCCAError(RuntimeError):
    """The linear algebra of a fit or a score failed (non-convergence, non-finite values)."""


# --------------------------------------------------------------------------------------
# sufficient statistics


@dataclass
class SufficientStats:
    """n, sum and cross products of the rows [x - shift_x, y - shift_y] of one row set.

    The shift (a rough column mean, common to all parts of one data set) keeps the
    centring ``S - n mu mu^T`` free of cancellation when the data have large offsets.
    """

    n: int
    total: torch.Tensor  # (d1 + d2,) sum of shifted rows
    cross: torch.Tensor  # (d1 + d2, d1 + d2) sum of outer products of shifted rows
    shift: torch.Tensor  # (d1 + d2,)
    dim_x: int
    _scatter: torch.Tensor | None = field(default=None, repr=False, compare=False)

    def __add__(self, other: SufficientStats) -> SufficientStats:
        if other.dim_x != self.dim_x or not torch.equal(other.shift, self.shift):
            raise ValueError("sufficient statistics of different data sets cannot be added")
        return SufficientStats(
            self.n + other.n, self.total + other.total, self.cross + other.cross,
            self.shift, self.dim_x,
        )

    @property
    def mean(self) -> torch.Tensor:
        """Raw column means of [x y]."""
        return self.total / self.n + self.shift

    def scatter(self) -> torch.Tensor:
        """Centred cross products sum_i (r_i - mean)(r_i - mean)^T (computed once, cached)."""
        if self._scatter is None:
            mu = self.total / self.n
            self._scatter = self.cross - self.n * torch.outer(mu, mu)
        return self._scatter


def _check_2d(a, name: str) -> np.ndarray | torch.Tensor:
    """A numpy or torch (detached) 2-D array; converted to float64 chunk by chunk later."""
    if isinstance(a, torch.Tensor):
        a = a.detach()
    else:
        a = np.asarray(a)
    if a.ndim != 2:
        raise ValueError(f"{name} must be 2-D (samples x dims), got shape {tuple(a.shape)}")
    return a


def _rows(a, idx: np.ndarray | None, device: torch.device) -> torch.Tensor:
    """Rows `idx` of a (numpy or torch) as float64 on `device`."""
    if isinstance(a, torch.Tensor):
        sub = a if idx is None else a[torch.as_tensor(idx, device=a.device)]
        return sub.to(device=device, dtype=torch.float64)
    sub = a if idx is None else a[idx]
    return torch.as_tensor(np.ascontiguousarray(sub, dtype=np.float64), device=device)


def _shifted_chunk(x, y, idx: np.ndarray, shift: torch.Tensor, device: torch.device) -> torch.Tensor:
    """[x[idx] y[idx]] - shift as one float64 (idx, d1 + d2) tensor on `device`."""
    if device.type == "cpu" and isinstance(x, np.ndarray) and isinstance(y, np.ndarray):
        # numpy inputs: gather and cast straight into one buffer (no intermediate copies)
        buf = np.empty((idx.size, x.shape[1] + y.shape[1]))
        buf[:, : x.shape[1]] = x[idx]
        buf[:, x.shape[1]:] = y[idx]
        buf -= shift.numpy()
        return torch.from_numpy(buf)
    return torch.cat([_rows(x, idx, device), _rows(y, idx, device)], dim=1) - shift


class _CrossProducts:
    """Running z^T z.  On CPU through numpy, which sends ``z.T @ z`` to BLAS syrk (half the
    flops of a matmul; torch's CPU matmul does the full product); on CUDA a torch matmul."""

    def __init__(self, d: int, device: torch.device):
        self.device = device
        if device.type == "cpu":
            self.acc = np.zeros((d, d))
        else:
            self.acc = torch.zeros(d, d, dtype=torch.float64, device=device)

    def add(self, z: torch.Tensor) -> None:
        if self.device.type == "cpu":
            zn = z.numpy()
            self.acc += zn.T @ zn
        else:
            self.acc += z.T @ z

    def result(self) -> torch.Tensor:
        return torch.from_numpy(self.acc) if self.device.type == "cpu" else self.acc


def accumulate_stats(
    x,
    y,
    parts: Sequence[np.ndarray] | None = None,
    device: str | torch.device = "auto",
    progress: bool = False,
) -> list[SufficientStats]:
    """One pass over the data: the sufficient statistics of every part (or of all rows).

    x: (n, d1), y: (n, d2), numpy or torch, any float dtype (computed in float64).
    """
    x = _check_2d(x, "x")
    y = _check_2d(y, "y")
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"x and y must have the same number of rows, got {x.shape[0]} and {y.shape[0]}")
    n = x.shape[0]
    if n < 2:
        raise ValueError(f"PWCCA needs at least 2 rows, got {n}")
    dev = pick_device(device) if isinstance(device, str) else device
    index_sets = [None] if parts is None else [np.asarray(p, dtype=np.int64) for p in parts]
    for i, p in enumerate(index_sets):
        if p is None:
            continue
        if p.ndim != 1 or p.size == 0:
            raise ValueError(f"part {i} must be a non-empty 1-D array of row indices")
        if p.min() < 0 or p.max() >= n:
            raise ValueError(f"part {i} has row indices outside [0, {n})")
    head = np.arange(min(n, _SHIFT_ROWS))
    shift = torch.cat([_rows(x, head, dev).mean(0), _rows(y, head, dev).mean(0)])
    dx = x.shape[1]
    d = dx + y.shape[1]
    total_rows = sum(n if p is None else p.size for p in index_sets)
    bar = tqdm(total=total_rows, desc="PWCCA statistics", unit="row", disable=not progress, leave=False)
    out = []
    for p in index_sets:
        rows = np.arange(n) if p is None else p
        s = torch.zeros(d, dtype=torch.float64, device=dev)
        c = _CrossProducts(d, dev)
        for start in range(0, rows.size, _CHUNK_ROWS):
            idx = rows[start:start + _CHUNK_ROWS]
            z = _shifted_chunk(x, y, idx, shift, dev)
            s += z.sum(0)
            c.add(z)
            bar.update(idx.size)
        cross = c.result()
        if not bool(torch.isfinite(s).all() and torch.isfinite(cross).all()):
            raise ValueError("x or y contains NaN or infinite values")
        out.append(SufficientStats(int(rows.size), s, cross, shift, dx))
    bar.close()
    return out


# --------------------------------------------------------------------------------------
# fit


@dataclass
class _Eig:
    """Eigendecomposition of one view's rescaled kept covariance, null directions removed."""

    values: torch.Tensor
    vectors: torch.Tensor
    rank: int


def _eig(cov: torch.Tensor, null_tol: float) -> _Eig:
    try:
        w, v = torch.linalg.eigh(cov)
    except torch.linalg.LinAlgError as e:
        raise PWCCAError(f"eigendecomposition failed: {e}") from e
    keep = w >= null_tol * w.max()
    return _Eig(w[keep], v[:, keep], int(keep.sum()))


@contextmanager
def _one_cpu_thread(device: torch.device):
    """Run torch's CPU linear algebra single-threaded.

    These matrices are small (<= a few thousand), and torch's CPU LAPACK (MKL + OpenMP)
    with 2 threads was 20-40x SLOWER than with 1 on the shared 2-core build machines
    (eigh of 768 x 768: ~3 s vs 0.09 s); one thread costs little where it is not.
    """
    if device.type != "cpu":
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _single_threaded(method):
    """Method decorator: `_one_cpu_thread` on the fit's / statistics' device."""

    @functools.wraps(method)
    def wrapper(self_or_cls, stats, *args, **kwargs):
        with _one_cpu_thread(stats.cross.device):
            return method(self_or_cls, stats, *args, **kwargs)

    return wrapper


def _block(m: torch.Tensor, rows: torch.Tensor | None, cols: torch.Tensor | None) -> torch.Tensor:
    """m[rows][:, cols]; None means all (no copy in the common all-kept case)."""
    if rows is not None:
        m = m[rows]
    if cols is not None:
        m = m[:, cols]
    return m


def _mask_or_none(mask: np.ndarray, device: torch.device) -> torch.Tensor | None:
    return None if mask.all() else torch.as_tensor(mask, device=device)


def _svd_flip(u: torch.Tensor, vt: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Make the largest-magnitude entry of each left singular vector positive (row of vt too)."""
    j = u.abs().argmax(dim=0)
    signs = torch.sign(u[j, torch.arange(u.shape[1], device=u.device)])
    signs[signs == 0] = 1.0
    k = min(u.shape[1], vt.shape[0])
    u = u * signs
    vt = vt.clone()
    vt[:k] *= signs[:k, None]
    return u, vt


@dataclass
class PWCCAFit:
    """Fitted PWCCA projections; `.score(x, y)` scores any rows with them.

    kept_x / kept_y: boolean masks of the dimensions that passed the eps variance cut;
    rank_x / rank_y: kept dimensions minus exact null directions (module docstring);
    correlations: the canonical correlations of the fit (first k).
    """

    eps_x: float
    eps_y: float
    kept_x: np.ndarray
    kept_y: np.ndarray
    rank_x: int
    rank_y: int
    num_directions: int  # k = min(kept dims), as the reference
    correlations: np.ndarray  # (k,); 0 for null directions
    proj_x: torch.Tensor  # (min(rank_x, rank_y), kept_dims_x)
    proj_y: torch.Tensor  # (min(rank_x, rank_y), kept_dims_y)
    device: torch.device = field(repr=False)

    @property
    def eps(self) -> tuple[float, float]:
        return (self.eps_x, self.eps_y)

    @property
    def kept_dims_x(self) -> int:
        return int(self.kept_x.sum())

    @property
    def kept_dims_y(self) -> int:
        return int(self.kept_y.sum())

    @property
    def weights_view(self) -> str:
        """The view whose data weight the directions: fewer kept dims, y on a tie."""
        return "x" if self.kept_dims_x < self.kept_dims_y else "y"

    def score(self, x, y) -> float:
        """PWCCA score of these rows (centred with their own means)."""
        x = _check_2d(x, "x")
        y = _check_2d(y, "y")
        if x.shape[1] != self.kept_x.size or y.shape[1] != self.kept_y.size:
            raise ValueError(
                f"fit is for dims ({self.kept_x.size}, {self.kept_y.size}), "
                f"got x {tuple(x.shape)} and y {tuple(y.shape)}"
            )
        (stats,) = accumulate_stats(x, y, device=self.device)
        return self.score_stats(stats)

    @_single_threaded
    def score_stats(self, stats: SufficientStats) -> float:
        """PWCCA score of the rows summarised by `stats` (see module docstring)."""
        dx = stats.dim_x
        kx = _mask_or_none(self.kept_x, self.device)
        ky = _mask_or_none(self.kept_y, self.device)
        sc = stats.scatter()
        mean = stats.mean
        sxx = _block(sc[:dx, :dx], kx, kx)
        syy = _block(sc[dx:, dx:], ky, ky)
        sxy = _block(sc[:dx, dx:], kx, ky)
        px, py = self.proj_x, self.proj_y
        k, k_eff = self.num_directions, px.shape[0]
        num = ((px @ sxy) * py).sum(1)
        vx = ((px @ sxx) * px).sum(1)
        vy = ((py @ syy) * py).sum(1)
        corr = torch.zeros(k, dtype=torch.float64, device=self.device)
        corr[:k_eff] = num / torch.sqrt(vx * vy)  # null directions: no correlation
        if self.weights_view == "x":
            p, svv, m = px, sxx, _block(mean[:dx], kx, None)
        else:
            p, svv, m = py, syy, _block(mean[dx:], ky, None)
        m = m[:k]
        try:
            lh = torch.linalg.cholesky(p @ svv @ p.T)
            # E = [1 | Vc P^T] = F L;  M = E C, C = [m^T; I 0];  A = first k kept raw columns
            top = math.sqrt(stats.n) * m[None, :]
            fta = torch.cat([top, torch.linalg.solve_triangular(lh, p @ svv[:, :k], upper=False)])
            lc = torch.cat([top, torch.nn.functional.pad(lh.T, (0, k - k_eff))])
            q, r = torch.linalg.qr(lc, mode="reduced")
        except torch.linalg.LinAlgError as e:
            raise PWCCAError(f"PWCCA weights failed: {e}") from e
        # Columns of M that add nothing new (beyond the first null direction) get weight 0.
        rdiag = torch.diagonal(r).abs()
        independent = rdiag > 1e-12 * rdiag.max()
        w = torch.zeros(k, dtype=torch.float64, device=self.device)
        w[: q.shape[1]] = (q.T @ fta).abs().sum(1) * independent
        w = w / w.sum()
        score = float((w * corr).sum())
        if not math.isfinite(score):
            raise PWCCAError("PWCCA score is not finite (a projected direction has zero variance)")
        return score

    @classmethod
    @_single_threaded
    def from_stats(
        cls,
        stats: SufficientStats,
        eps_x: float,
        eps_y: float,
        null_tol: float = NULL_TOL,
        _cache: dict | None = None,
    ) -> PWCCAFit:
        """Fit on the rows summarised by `stats` (the reference fit, module docstring).

        `_cache` may be shared by fits of the SAME `stats` with different eps: the rescaled
        covariance and each view's eigendecomposition are then computed once.
        """
        if stats.n < 2:
            raise ValueError(f"PWCCA fit needs at least 2 rows, got {stats.n}")
        dx = stats.dim_x
        dev = stats.cross.device
        cache = {} if _cache is None else _cache
        if "cov" not in cache:
            c = stats.scatter() / (stats.n - 1)
            cxx, cyy, cxy = c[:dx, :dx], c[dx:, dx:], c[:dx, dx:]
            xmax, ymax = cxx.abs().max(), cyy.abs().max()
            if xmax == 0 or ymax == 0:
                raise ValueError("a view is constant on the fit rows (zero covariance)")
            cache["cov"] = (cxx / xmax, cyy / ymax, cxy / torch.sqrt(xmax * ymax))
        cxx, cyy, cxy = cache["cov"]
        kx = torch.diagonal(cxx).abs() >= eps_x
        ky = torch.diagonal(cyy).abs() >= eps_y
        if not bool(kx.any()):
            raise ValueError(f"no dimension of x has rescaled variance >= eps_x={eps_x}")
        if not bool(ky.any()):
            raise ValueError(f"no dimension of y has rescaled variance >= eps_y={eps_y}")
        mask_x, mask_y = kx.cpu().numpy(), ky.cpu().numpy()
        ix, iy = _mask_or_none(mask_x, dev), _mask_or_none(mask_y, dev)
        key_x = ("x", mask_x.tobytes(), null_tol)
        key_y = ("y", mask_y.tobytes(), null_tol)
        if key_x not in cache:
            cache[key_x] = _eig(_block(cxx, ix, ix), null_tol)
        if key_y not in cache:
            cache[key_y] = _eig(_block(cyy, iy, iy), null_tol)
        ex, ey = cache[key_x], cache[key_y]
        # Sxx^-1/2 Sxy Syy^-1/2 = Vx (Dx B Dy) Vy^T with B = Vx^T Sxy Vy shared by all eps.
        key_b = (key_x, key_y)
        if key_b not in cache:
            cache[key_b] = ex.vectors.T @ _block(cxy, ix, iy) @ ey.vectors
        dxs, dys = (ex.values + eps_x).rsqrt(), (ey.values + eps_y).rsqrt()
        try:
            u, s, vt = torch.linalg.svd(dxs[:, None] * cache[key_b] * dys[None, :], full_matrices=False)
        except torch.linalg.LinAlgError as e:
            raise PWCCAError(f"SVD failed: {e}") from e
        if not bool(torch.isfinite(s).all()):
            raise PWCCAError("non-finite canonical correlations")
        k_eff = min(ex.rank, ey.rank)
        u, vt = _svd_flip(ex.vectors @ u[:, :k_eff], vt[:k_eff] @ ey.vectors.T)
        proj_x = (u.T @ ex.vectors) * dxs @ ex.vectors.T  # u^T Sxx^-1/2
        proj_y = (vt @ ey.vectors) * dys @ ey.vectors.T  # v^T Syy^-1/2
        k = min(int(kx.sum()), int(ky.sum()))
        corrs = np.zeros(k)
        corrs[:k_eff] = s[:k_eff].abs().cpu().numpy()
        return cls(
            eps_x=float(eps_x), eps_y=float(eps_y),
            kept_x=kx.cpu().numpy(), kept_y=ky.cpu().numpy(),
            rank_x=ex.rank, rank_y=ey.rank,
            num_directions=k, correlations=corrs,
            proj_x=proj_x, proj_y=proj_y, device=dev,
        )


def pwcca_fit(x, y, eps_x: float, eps_y: float, *, device: str = "auto",
              null_tol: float = NULL_TOL) -> PWCCAFit:
    """Fit PWCCA on all rows of x (n, d1) and y (n, d2) (numpy or torch)."""
    (stats,) = accumulate_stats(x, y, device=device)
    return PWCCAFit.from_stats(stats, eps_x, eps_y, null_tol)


# --------------------------------------------------------------------------------------
# cross-validation


@dataclass
class PairResult:
    """One (dev, test) split of the cross-validation."""

    dev_part: int
    test_part: int
    chosen_eps_x: float
    chosen_eps_y: float
    dev_score: float
    test_score: float
    train_score: float
    fallback: bool  # True when every grid eps failed and a larger eps was used
    failed_eps: list[tuple[float, float]] = field(default_factory=list)


@dataclass
class CVResult:
    """Per-pair results and the mean test score (the layer's cross-validated score)."""

    per_pair: list[PairResult]
    mean_test_score: float


def _check_parts_pairs(parts, pairs) -> None:
    if len(parts) < 3:
        raise ValueError(f"cross-validation needs at least 3 parts, got {len(parts)}")
    if not pairs:
        raise ValueError("cross-validation needs at least one (dev, test) pair")
    for dev, test in pairs:
        for p in (dev, test):
            if not 0 <= p < len(parts):
                raise ValueError(f"pair ({dev}, {test}) names part {p}, but there are {len(parts)} parts")
        if dev == test:
            raise ValueError(f"pair ({dev}, {test}): dev and test parts must differ")


def _cv_pair(part_stats, dev, test, eps_grid, null_tol) -> PairResult:
    train = None
    for i, s in enumerate(part_stats):
        if i not in (dev, test):
            train = s if train is None else train + s
    cache: dict = {}
    failed: list[tuple[float, float]] = []

    def search(candidates, first_success: bool = False):
        best = None
        for ex, ey in candidates:
            try:
                fit = PWCCAFit.from_stats(train, ex, ey, null_tol, _cache=cache)
                score = fit.score_stats(part_stats[dev])
            except PWCCAError:
                failed.append((float(ex), float(ey)))
                continue
            if best is None or score > best[1]:
                best = (fit, score)
            if first_success:
                break
        return best

    best = search(eps_grid)
    fallback = best is None
    if fallback:
        # larger eps only after a failure: the smallest one that works
        best = search([(e, e) for e in FALLBACK_EPS], first_success=True)
        if best is None:
            raise PWCCAError(
                f"PWCCA failed for split (dev {dev}, test {test}) with every epsilon, "
                f"including the fallbacks {list(FALLBACK_EPS)}"
            )
    fit, dev_score = best
    return PairResult(
        dev_part=int(dev), test_part=int(test),
        chosen_eps_x=fit.eps_x, chosen_eps_y=fit.eps_y,
        dev_score=dev_score,
        test_score=fit.score_stats(part_stats[test]),
        train_score=fit.score_stats(train),
        fallback=fallback, failed_eps=failed,
    )


def pwcca_crossval(
    x,
    y,
    parts: Sequence[np.ndarray],
    pairs: Sequence[tuple[int, int]],
    eps_grid: Sequence[tuple[float, float]] = DEFAULT_EPS_GRID,
    *,
    device: str = "auto",
    null_tol: float = NULL_TOL,
    progress: bool = False,
) -> CVResult:
    """Cross-validated PWCCA with explicit parts, (dev, test) part pairs and ordered eps grid.

    For each pair: fit on all other parts with every eps pair in order, score on dev, keep
    the FIRST best, report its test and train scores.  Data are read once (per-part
    sufficient statistics).
    """
    _check_parts_pairs(parts, pairs)
    if not eps_grid:
        raise ValueError("eps_grid is empty")
    part_stats = accumulate_stats(x, y, parts, device=device, progress=progress)
    per_pair = [_cv_pair(part_stats, dev, test, eps_grid, null_tol) for dev, test in pairs]
    return CVResult(per_pair, float(np.mean([p.test_score for p in per_pair])))


# --------------------------------------------------------------------------------------
# the benchmark's own protocol


def stratified_parts(labels_or_n, num_parts: int = 10, seed: int = 0) -> list[np.ndarray]:
    """Split rows into `num_parts` parts: stratified by label, or at random for an int n.

    Stratified: each label's rows are shuffled and dealt round-robin, labels one after
    another, so every part gets its share of every label and part sizes differ by <= 1.
    """
    rng = np.random.default_rng(seed)
    if isinstance(labels_or_n, (int, np.integer)):
        n = int(labels_or_n)
        if n < num_parts:
            raise ValueError(f"cannot split {n} rows into {num_parts} parts")
        order = rng.permutation(n)
    else:
        labels = np.asarray(labels_or_n)
        if labels.ndim != 1:
            raise ValueError(f"labels must be 1-D, got shape {labels.shape}")
        n = labels.size
        if n < num_parts:
            raise ValueError(f"cannot split {n} rows into {num_parts} parts")
        uniq, inv = np.unique(labels, return_inverse=True)
        order = np.concatenate([rng.permutation(np.flatnonzero(inv == c)) for c in range(uniq.size)])
    assign = np.empty(n, dtype=np.int64)
    assign[order] = np.arange(n) % num_parts
    return [np.flatnonzero(assign == p) for p in range(num_parts)]


def default_pairs(num_parts: int = 10, num_pairs: int = 3, seed: int = 0) -> list[tuple[int, int]]:
    """`num_pairs` disjoint (dev, test) part pairs, drawn at random (seeded)."""
    if 2 * num_pairs > num_parts:
        raise ValueError(f"{num_pairs} disjoint (dev, test) pairs need >= {2 * num_pairs} parts, got {num_parts}")
    perm = np.random.default_rng(seed).permutation(num_parts)
    return [(int(perm[2 * i]), int(perm[2 * i + 1])) for i in range(num_pairs)]


def layer_score(
    x,
    y,
    labels=None,
    seed: int = 0,
    repeats: int = 1,
    *,
    num_parts: int = 10,
    num_pairs: int = 3,
    eps_grid: Sequence[tuple[float, float]] = DEFAULT_EPS_GRID,
    device: str = "auto",
    null_tol: float = NULL_TOL,
    progress: bool = False,
) -> dict:
    """The benchmark's cross-validated PWCCA score of one layer (JSON-able dict).

    x, y (and labels) are one sample set, or lists with one entry per sample set (the
    paper repeats on three sample sets where the data allow).  Each sample set is split
    `repeats` times; split r of set s uses seed ``seed + 1000 * s + r`` for both the parts
    (stratified by `labels` when given, else random) and the pairs.  score = mean test
    score over every split.
    """
    multi = isinstance(x, (list, tuple))
    xs = list(x) if multi else [x]
    ys = list(y) if multi else [y]
    if len(xs) != len(ys):
        raise ValueError(f"got {len(xs)} x sample sets but {len(ys)} y sample sets")
    if labels is None:
        ls = [None] * len(xs)
    else:
        ls = list(labels) if multi else [labels]
        if len(ls) != len(xs):
            raise ValueError(f"got {len(xs)} sample sets but {len(ls)} label arrays")
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    splits = []
    kept = []
    for s, (xi, yi, li) in enumerate(zip(xs, ys, ls)):
        n = int(xi.shape[0])
        if li is not None and len(li) != n:
            raise ValueError(f"sample set {s}: {len(li)} labels for {n} rows")
        for r in range(repeats):
            split_seed = seed + 1000 * s + r
            parts = stratified_parts(n if li is None else li, num_parts, split_seed)
            pairs = default_pairs(num_parts, num_pairs, split_seed)
            cv = pwcca_crossval(xi, yi, parts, pairs, eps_grid, device=device,
                                null_tol=null_tol, progress=progress)
            for p in cv.per_pair:
                d = asdict(p)
                d["failed_eps"] = [list(e) for e in d["failed_eps"]]
                splits.append({"sample_set": s, "repeat": r, "seed": split_seed, "num_samples": n, **d})
        kept.append(n)
    return {
        "score": float(np.mean([sp["test_score"] for sp in splits])),
        "score_std": float(np.std([sp["test_score"] for sp in splits])),
        "num_splits": len(splits),
        "num_samples": kept,
        "seed": int(seed),
        "eps_grid": [list(map(float, e)) for e in eps_grid],
        "splits": splits,
    }
