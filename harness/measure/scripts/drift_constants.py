#!/usr/bin/env python3
"""Prints the SciPy figures that harness/measure/src/drift_tests.rs checks against.

The samples are the crate's own seeded normals (xoshiro256++ seeded by SplitMix64, Box-Muller,
`rng::normal_sample`), ported here bit for bit and rounded to f32 as the drift functions read
them. Needs numpy and scipy (`pip install --user scipy`); the Rust tests do not.
"""
import math

import numpy as np
from scipy import stats

M = (1 << 64) - 1


def rotl(x, k):
    return ((x << k) | (x >> (64 - k))) & M


class Rng:
    def __init__(self, seed):
        sm = seed
        s = []
        for _ in range(4):
            sm = (sm + 0x9E3779B97F4A7C15) & M
            z = sm
            z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M
            z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M
            s.append(z ^ (z >> 31))
        self.s = s

    def next_u64(self):
        s = self.s
        result = (rotl((s[0] + s[3]) & M, 23) + s[0]) & M
        t = (s[1] << 17) & M
        s[2] ^= s[0]
        s[3] ^= s[1]
        s[1] ^= s[2]
        s[0] ^= s[3]
        s[2] ^= t
        s[3] = rotl(s[3], 45)
        return result

    def unit(self):
        return (self.next_u64() >> 11) * (1.0 / (1 << 53))

    def normal(self):
        u1 = 1.0 - self.unit()
        u2 = self.unit()
        return math.sqrt(-2.0 * math.log(u1)) * math.cos(2 * math.pi * u2)


def sample(seed, n, mean, sd):
    r = Rng(seed)
    return np.array([mean + sd * r.normal() for _ in range(n)], dtype=np.float32).astype(np.float64)


def psi(ref, new, bins=10):
    edges = np.unique(np.quantile(ref, [k / bins for k in range(1, bins)]))  # type 7
    def shares(x):
        idx = np.searchsorted(edges, x, side="left")  # right-closed bins: x == edge goes below
        return np.bincount(idx, minlength=len(edges) + 1) / len(x)
    p, q = np.maximum(shares(ref), 1e-4), np.maximum(shares(new), 1e-4)
    return float(np.sum((q - p) * np.log(q / p)))


a, b = sample(1, 60, 0.0, 1.0), sample(2, 80, 0.5, 1.0)
r = stats.ks_2samp(a, b, method="exact")
print("exact 60 vs 80:", repr(r.statistic), repr(r.pvalue))

a, b = sample(3, 4000, 0.0, 1.0), sample(4, 3000, 0.06, 1.0)
r = stats.ks_2samp(a, b, method="asymp")
en = 4000 * 3000 / 7000
print("asymp 4000 vs 3000:", repr(r.statistic), "kstwobign.sf", repr(stats.kstwobign.sf(math.sqrt(en) * r.statistic)),
      "(ks_2samp asymp, kstwo:", repr(r.pvalue), ")")

a, b = sample(5, 20000, 0.0, 1.0), sample(6, 20000, 0.5, 1.0)
print("psi 20000 N(0,1) vs N(0.5,1):", repr(psi(a, b)), "ks", repr(stats.ks_2samp(a, b).statistic))
c = sample(7, 20000, 0.0, 1.0)
print("psi 20000 N(0,1) vs N(0,1):", repr(psi(a, c)))

for table in ([[520, 480], [430, 570]], [[300, 500, 200], [250, 500, 250]]):
    chi2, p, dof, _ = stats.chi2_contingency(table, correction=False)
    print("chi2", table, repr(chi2), repr(p), dof)
