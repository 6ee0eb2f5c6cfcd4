"""Speed of LayerBench's cross-validated PWCCA against a straightforward baseline.

BASELINE (below, `baseline_*`): the same algorithm written the obvious numpy way, as the
reference code does it — a fresh ``np.cov`` of the training rows for every (split,
epsilon) fit, pinv + eigh inverse square roots, and an n x k QR for every score.
LAYERBENCH: `bench.cca.pwcca_crossval`, which reads the data once into per-part
sufficient statistics.

Both run in this process on the same data (frame-level: n frames, an 80-dim mel-like view
against a 768-dim layer-like view), the same 10 parts, 3 disjoint pairs and 9-epsilon
grid; the script asserts that they give the same scores and prints the time ratio.

    python scripts/bench_pwcca.py            # n = 180000, the reference size of docs/design.md
    python scripts/bench_pwcca.py --n 20000  # quicker
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

from bench.cca import DEFAULT_EPS_GRID, default_pairs, pwcca_crossval, stratified_parts


# ----------------------------------------------------------------------------- baseline


def baseline_fit(x: np.ndarray, y: np.ndarray, eps_x: float, eps_y: float) -> dict:
    """The reference fit, recomputing the covariance from the rows every time."""
    dx = x.shape[1]
    c = np.cov(x.T, y.T)
    sxx, syy, sxy = c[:dx, :dx], c[dx:, dx:], c[:dx, dx:]
    xmax, ymax = np.abs(sxx).max(), np.abs(syy).max()
    sxx, syy, sxy = sxx / xmax, syy / ymax, sxy / np.sqrt(xmax * ymax)
    kx, ky = np.abs(np.diag(sxx)) >= eps_x, np.abs(np.diag(syy)) >= eps_y
    sxx = sxx[kx][:, kx] + eps_x * np.eye(kx.sum())
    syy = syy[ky][:, ky] + eps_y * np.eye(ky.sum())
    sxy = sxy[kx][:, ky]

    def inv_sqrt(a):
        w, v = np.linalg.eigh(np.linalg.pinv(a))
        return (v * np.sqrt(w)) @ v.T

    wx, wy = inv_sqrt(sxx), inv_sqrt(syy)
    u, _, vt = np.linalg.svd(wx @ sxy @ wy)
    signs = np.sign(u[np.abs(u).argmax(0), np.arange(u.shape[1])])
    u = u * signs
    k = min(u.shape[1], vt.shape[0])
    vt[:k] *= signs[:k, None]
    return {"kx": kx, "ky": ky, "px": u.T @ wx, "py": vt @ wy}


def baseline_score(fit: dict, x: np.ndarray, y: np.ndarray) -> float:
    """The reference score: projections, correlations, QR weights on the rows themselves."""
    xs, ys = x[:, fit["kx"]], y[:, fit["ky"]]
    mx, my = xs.mean(0), ys.mean(0)
    k = min(xs.shape[1], ys.shape[1])
    p1 = (xs - mx) @ fit["px"][:k].T
    p2 = (ys - my) @ fit["py"][:k].T
    corr = (p1 * p2).sum(0) / np.sqrt((p1 * p1).sum(0) * (p2 * p2).sum(0))
    p, acts, m = (p1, xs, mx) if xs.shape[1] < ys.shape[1] else (p2, ys, my)
    q, _ = np.linalg.qr(p + m[:k])
    w = np.abs(q.T @ acts[:, :k]).sum(1)
    w /= w.sum()
    return float((w * corr).sum())


def baseline_crossval(x, y, parts, pairs, eps_grid) -> list[dict]:
    out = []
    for dev, test in pairs:
        train = np.concatenate([p for i, p in enumerate(parts) if i not in (dev, test)])
        xt, yt = x[train].astype(np.float64), y[train].astype(np.float64)
        xd, yd = x[parts[dev]].astype(np.float64), y[parts[dev]].astype(np.float64)
        best = None
        for ex, ey in eps_grid:
            fit = baseline_fit(xt, yt, ex, ey)
            s = baseline_score(fit, xd, yd)
            if best is None or s > best[1]:
                best = (fit, s, (ex, ey))
        fit, dev_score, eps = best
        xs, ys = x[parts[test]].astype(np.float64), y[parts[test]].astype(np.float64)
        out.append({
            "dev_part": dev, "test_part": test, "eps": eps, "dev_score": dev_score,
            "test_score": baseline_score(fit, xs, ys), "train_score": baseline_score(fit, xt, yt),
        })
    return out


# ----------------------------------------------------------------------------- data


def make_frames(n: int, dim_x: int, dim_y: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Float32 frames: a layer-like view that shares a 64-dim latent with a mel-like view."""
    rng = np.random.default_rng(seed)
    latent = rng.standard_normal((n, 64), dtype=np.float32)
    y = latent @ rng.standard_normal((64, dim_y), dtype=np.float32)
    y += 2.0 * rng.standard_normal((n, dim_y), dtype=np.float32) + 3.0
    x = latent @ rng.standard_normal((64, dim_x), dtype=np.float32)
    x += 4.0 * rng.standard_normal((n, dim_x), dtype=np.float32) - 1.0
    return x, y


def cpu_name() -> str:
    """The CPU model from /proc/cpuinfo (Linux), else what `platform` knows."""
    cpuinfo = Path("/proc/cpuinfo")
    lines = cpuinfo.read_text().splitlines() if cpuinfo.is_file() else []
    names = [line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")]
    return names[0] if names else platform.processor() or "unknown CPU"


def run(n: int, dim_x: int, dim_y: int, seed: int, device: str) -> dict:
    x, y = make_frames(n, dim_x, dim_y, seed)
    parts = stratified_parts(n, 10, seed)
    pairs = default_pairs(10, 3, seed)

    t0, c0 = time.perf_counter(), time.process_time()
    ours = pwcca_crossval(x, y, parts, pairs, DEFAULT_EPS_GRID, device=device, progress=True)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    t_ours, c_ours = time.perf_counter() - t0, time.process_time() - c0

    t0, c0 = time.perf_counter(), time.process_time()
    base = baseline_crossval(x, y, parts, pairs, DEFAULT_EPS_GRID)
    t_base, c_base = time.perf_counter() - t0, time.process_time() - c0

    max_diff = 0.0
    for a, b in zip(ours.per_pair, base):
        for key in ("dev_score", "test_score", "train_score"):
            max_diff = max(max_diff, abs(getattr(a, key) - b[key]))
    if max_diff > 1e-8:
        raise AssertionError(f"LayerBench and baseline scores differ by {max_diff:.3e}")
    return {
        "n": n, "dim_x": dim_x, "dim_y": dim_y, "seed": seed, "device": device,
        "cpu": cpu_name(), "torch_threads": torch.get_num_threads(),
        "baseline_seconds": round(t_base, 2), "layerbench_seconds": round(t_ours, 2),
        "speedup": round(t_base / t_ours, 1),
        # CPU seconds of this process (all threads): less sensitive to other jobs on the machine
        "baseline_cpu_seconds": round(c_base, 2), "layerbench_cpu_seconds": round(c_ours, 2),
        "cpu_time_speedup": round(c_base / c_ours, 1),
        "max_score_diff": max_diff,
        "mean_test_score": ours.mean_test_score,
        "fits": len(pairs) * len(DEFAULT_EPS_GRID),
    }


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=180_000, help="frames (default 180000)")
    ap.add_argument("--dim-x", type=int, default=768, help="layer dim (default 768)")
    ap.add_argument("--dim-y", type=int, default=80, help="mel dim (default 80)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="cpu", help="device for LayerBench (baseline is numpy on CPU)")
    ap.add_argument("--threads", type=int, default=2,
                    help="BLAS/LAPACK threads for both implementations (default 2, the reference's cores)")
    ap.add_argument("--out", type=Path, default=None, help="also write the result JSON here")
    args = ap.parse_args(argv)
    if args.n < 100:
        ap.error(f"--n must be >= 100, got {args.n}")
    if args.threads < 1:
        ap.error(f"--threads must be >= 1, got {args.threads}")
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(args.threads)
    with threadpool_limits(limits=args.threads):
        result = run(args.n, args.dim_x, args.dim_y, args.seed, args.device)
    text = json.dumps(result, indent=1)
    print(text)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
        print(f"result written to {args.out}")
    else:
        print("result printed above (use --out FILE to keep it)")
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
