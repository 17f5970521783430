#!/usr/bin/env python3
"""Derive the polynomial coefficients used by the canonical math functions.

Dev tool only (needs `pip install mpmath`); nothing in the build runs it.
The coefficients it prints are copied, as f32 decimal literals, into
`host-gpu/src/math.rs` and `host-gpu/kernels/canonical.h`.

Method: linear Remez exchange on a dense grid, in 40-digit arithmetic,
minimising the max *relative* error of the whole approximant (not of the
polynomial alone). The coefficients are then rounded to f32 one at a time,
lowest degree first, re-running Remez on the remaining free coefficients
after each rounding so later ones absorb the rounding error of earlier ones.
"""
import struct
import sys
from mpmath import mp, mpf, exp, log, tanh, erf, erfc, sqrt, matrix, lu_solve, cos, pi

mp.dps = 40


def f32(v):
    """Round to nearest f32 (via f64; double rounding is harmless here)."""
    return struct.unpack("<f", struct.pack("<f", float(v)))[0]


def f32_bits(v):
    return struct.unpack("<I", struct.pack("<f", v))[0]


def remez(target, basis, weight, lo, hi, grid=3000, iters=40):
    """Minimise max |weight(x) * (target(x) - sum c_j basis_j(x))| over [lo, hi]."""
    n = len(basis)
    if n == 0:
        return [], max(abs(weight(x) * target(x)) for x in cheb_grid(lo, hi, grid))
    xs = cheb_grid(lo, hi, grid)
    tv = [target(x) for x in xs]
    wv = [weight(x) for x in xs]
    bv = [[b(x) for b in basis] for x in xs]
    # initial reference: Chebyshev extrema
    ref = [int(round((grid - 1) * (1 - cos(pi * i / n)) / 2)) for i in range(n + 1)]
    best = None
    for _ in range(iters):
        A = matrix(n + 1, n + 1)
        rhs = matrix(n + 1, 1)
        for i, gi in enumerate(ref):
            for j in range(n):
                A[i, j] = bv[gi][j]
            A[i, n] = (-1) ** i / wv[gi]
            rhs[i] = tv[gi]
        sol = lu_solve(A, rhs)
        c = [sol[j] for j in range(n)]
        err = [wv[g] * (tv[g] - sum(c[j] * bv[g][j] for j in range(n))) for g in range(grid)]
        emax = max(abs(e) for e in err)
        if best is None or emax < best[1]:
            best = (c, emax)
        # new reference: extremum of each sign-run
        runs = []
        start = 0
        for g in range(1, grid + 1):
            if g == grid or (err[g] >= 0) != (err[start] >= 0):
                seg = max(range(start, g), key=lambda k: abs(err[k]))
                runs.append(seg)
                start = g
        if len(runs) < n + 1:
            break
        # keep n+1 alternating extrema: drop the smaller end until n+1 remain
        while len(runs) > n + 1:
            if abs(err[runs[0]]) < abs(err[runs[-1]]):
                runs.pop(0)
            else:
                runs.pop()
        newref = runs
        bmin = min(abs(err[r]) for r in runs)
        if newref == ref:
            break
        ref = newref
        if emax - bmin < emax * mpf("1e-6"):
            break
    return best


def cheb_grid(lo, hi, n):
    lo, hi = mpf(lo), mpf(hi)
    return [lo + (hi - lo) * (1 - cos(pi * (i + mpf(0.5)) / n)) / 2 for i in range(n)]


def max_err(target, chosen, weight, lo, hi, grid=6000):
    return max(abs(weight(x) * (target(x) - sum(c * b(x) for c, b in chosen))) for x in cheb_grid(lo, hi, grid))


def fit_rounded(name, target, powers, weight, lo, hi):
    """powers: list of (label, basis callable), rounded to f32 in that order.

    Returns the f32 coefficients: the best (by max weighted error on a fine
    grid) of "refit the free ones after each rounding" candidates."""
    chosen = []
    free = list(powers)
    best = None
    while free:
        fixed_part = lambda x, ch=tuple(chosen): sum(ci * b(x) for ci, b in ch)
        c, e = remez(lambda x: target(x) - fixed_part(x), [b for _, b in free], weight, lo, hi)
        # candidate: round every remaining coefficient of this solution now
        cand = chosen + [(mpf(f32(ci)), b) for ci, (_, b) in zip(c, free)]
        ce = max_err(target, cand, weight, lo, hi)
        if best is None or ce < best[1]:
            best = (cand, ce)
        _, b = free.pop(0)
        chosen.append((mpf(f32(c[0])), b))
    cand, e = best
    for (label, _), (ci, _) in zip(powers, cand):
        v = float(ci)
        print(f"  {name} {label:>4}: {v!r:>24}  0x{f32_bits(v):08x}")
    print(f"  {name} max weighted err (f32 coefficients, exact arithmetic): {float(e):.3e} = 2^{float(log(e, 2)):.2f}")
    return [float(ci) for ci, _ in cand]


def main():
    which = sys.argv[1:] or ["exp", "log", "tanh", "erf"]
    if "exp" in which:
        # e^r = 1 + r + r^2*(C2 + C3 r + ... + C7 r^5), r in [-ln2/2, ln2/2] (+ margin)
        h = log(2) / 2 * mpf("1.0001")
        print(f"exp: C2..C7 on [{float(-h)}, {float(h)}], relative error")
        fit_rounded(
            "EXP",
            lambda r: exp(r) - 1 - r,
            [(f"C{j}", (lambda j: lambda r: r**j)(j)) for j in range(2, 8)],
            lambda r: 1 / exp(r),
            -h,
            h,
        )
    if "log" in which:
        # log((1+s)/(1-s)) = 2s + s*R(s^2), R(z) = L1 z + L2 z^2 + L3 z^3 + L4 z^4
        smax = (sqrt(2) - 1) / (sqrt(2) + 1) * mpf("1.0001")
        print(f"log: L1..L4, s in (0, {float(smax)}], relative error of log((1+s)/(1-s))")
        fit_rounded(
            "LOG",
            lambda s: log((1 + s) / (1 - s)) - 2 * s,
            [(f"L{j}", (lambda j: lambda s: s ** (2 * j + 1))(j)) for j in range(1, 5)],
            lambda s: 1 / log((1 + s) / (1 - s)),
            mpf("1e-6"),
            smax,
        )
    if "tanh" in which:
        # tanh a = a + a*z*(T1 + T2 z + ... + T6 z^5), z = a^2, a in [0, 0.625]
        print("tanh: T1..T6 on [0, 0.625], relative error")
        fit_rounded(
            "TANH",
            lambda x: tanh(x) - x,
            [(f"T{j}", (lambda j: lambda x: x ** (2 * j + 1))(j)) for j in range(1, 7)],
            lambda x: 1 / tanh(x),
            mpf("1e-6"),
            mpf("0.625"),
        )
    if "erf" in which:
        # erf a = a + a*(E0 + E1 z + ... + E6 z^6), z = a^2, a in [0, 1]
        print("erf: E0..E6 on [0, 1], relative error")
        fit_rounded(
            "ERF",
            lambda a: erf(a) - a,
            [(f"E{j}", (lambda j: lambda a: a ** (2 * j + 1))(j)) for j in range(0, 7)],
            lambda a: 1 / erf(a),
            mpf("1e-6"),
            mpf(1),
        )
        # erfc a = e^(-a^2) * (R0 + R1 t + ... + R8 t^8), t = a - 2.5, a in [1, 3.92];
        # weight e^(-a^2): the *absolute* error of erf = 1 - erfc
        m = mpf("2.5")
        print("erf tail: R0..R8 on a in [1, 3.92], t = a - 2.5, absolute error of erf")
        fit_rounded(
            "ERF",
            lambda t: erfc(t + m) * exp((t + m) ** 2),
            [(f"R{j}", (lambda j: lambda t: t**j)(j)) for j in range(0, 9)],
            lambda t: exp(-((t + m) ** 2)),
            1 - m,
            mpf("3.92") - m,
        )


if __name__ == "__main__":
    main()
