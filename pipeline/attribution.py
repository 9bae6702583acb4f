"""Joint feasibility of energy attribution: can the sessions' energies be laid out so that
every site EMS interval matches?

Each session has an energy between ``e_lo`` and ``e_hi`` and, in each interval it may have
drawn in, a share between ``least`` and ``most`` (``recon.session_intervals``). Each metered
interval accepts a total between ``lo`` and ``hi`` (the EMS value widened by its tolerance).
Energy that falls into unmetered intervals is free within the session's bounds there. The
question "is there a distribution?" is a transportation problem with lower and upper bounds,
i.e. a feasible circulation, solved as one maximum flow (scipy's ``maximum_flow``, Dinic's
algorithm, already a dependency of the stack; integer capacities, so energies are in Wh).

When no distribution exists, the minimum cut names the constraints that conflict; a
deletion filter shrinks them to an irreducible set of intervals (every one of them is needed
for the conflict; relaxing any one makes the rest satisfiable). That set is what a clerk
reads: these intervals, these sessions, this much energy cannot be placed.

Pure: numbers in, sets out; no warehouse access (``assets/attribution.py`` feeds it).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.sparse import coo_matrix, csr_matrix
from scipy.sparse.csgraph import breadth_first_order, connected_components, maximum_flow

WH = 1000.0  # capacities in Wh: integer flow, 1 Wh is far below any tolerance
INF = 2**30


@dataclass
class Problem:
    """One site's sessions and metered intervals (indices are positions in the arrays)."""

    e_lo: np.ndarray            # per session, kWh
    e_hi: np.ndarray
    free_lo: np.ndarray         # per session: least / most it can put into unmetered intervals
    free_hi: np.ndarray
    lo: np.ndarray              # per interval: least / most total the EMS value admits, kWh
    hi: np.ndarray
    edge_s: np.ndarray          # per (session, interval) edge
    edge_i: np.ndarray
    edge_lo: np.ndarray
    edge_hi: np.ndarray
    # per interval (EMS - point estimate) / tolerance: where a conflict most likely sits
    signed_deviation: np.ndarray = field(default_factory=lambda: np.zeros(0))

    @property
    def n_sessions(self) -> int:
        return len(self.e_lo)

    @property
    def n_intervals(self) -> int:
        return len(self.lo)


@dataclass(frozen=True)
class Conflict:
    """An irreducible set of intervals no distribution of the sessions' energies satisfies."""

    intervals: tuple[int, ...]
    sessions: tuple[int, ...]
    culprit: int                # the interval off furthest from its point estimate (in its own
                                # tolerances) in the direction of the conflict
    shortfall_kwh: float        # energy that cannot be placed with every interval constrained


def _flow(p: Problem, constrained: np.ndarray,
          no_floor: np.ndarray | None = None) -> tuple[int, int, csr_matrix, np.ndarray, int, int]:
    """Build the max-flow form of the circulation; returns (flow, demand, residual, ids...).

    ``no_floor`` marks constrained intervals whose lower bound is dropped (upper kept)."""
    ns, ni = p.n_sessions, p.n_intervals
    ss, st, src, snk = 0, 1, 2, 3
    sess = 4 + np.arange(ns)
    ivl = 4 + ns + np.arange(ni)
    n = 4 + ns + ni
    # lower bounds round down, upper bounds up: rounding never makes a feasible case infeasible
    floor = constrained if no_floor is None else constrained & ~no_floor
    lo_i = np.where(floor, np.floor(p.lo * WH), 0).astype(np.int64)
    hi_i = np.where(constrained, np.ceil(p.hi * WH), INF).astype(np.int64)
    hi_i = np.maximum(hi_i, lo_i)
    u = np.concatenate([np.full(ns, src), sess[p.edge_s], sess, ivl, [snk]])
    v = np.concatenate([sess, ivl[p.edge_i], np.full(ns, snk), np.full(ni, snk), [src]])
    lower = np.concatenate([np.floor(p.e_lo * WH), np.floor(p.edge_lo * WH), np.floor(p.free_lo * WH),
                            lo_i, [0]]).astype(np.int64)
    upper = np.concatenate([np.ceil(p.e_hi * WH), np.ceil(p.edge_hi * WH), np.ceil(p.free_hi * WH),
                            hi_i, [INF]]).astype(np.int64)
    upper = np.maximum(upper, lower)
    excess = np.zeros(n, dtype=np.int64)
    np.add.at(excess, v, lower)
    np.subtract.at(excess, u, lower)
    pos, neg = np.flatnonzero(excess > 0), np.flatnonzero(excess < 0)
    rows = np.concatenate([u, np.full(len(pos), ss), neg])
    cols = np.concatenate([v, pos, np.full(len(neg), st)])
    caps = np.concatenate([upper - lower, excess[pos], -excess[neg]])
    keep = caps > 0
    graph = coo_matrix((caps[keep], (rows[keep], cols[keep])), shape=(n, n)).tocsr()
    graph.sum_duplicates()
    graph.data = np.minimum(graph.data, INF).astype(np.int32)
    graph.indices = graph.indices.astype(np.int32)
    graph.indptr = graph.indptr.astype(np.int32)
    res = maximum_flow(graph, ss, st, method="dinic")
    demand = int(excess[pos].sum())
    return res.flow_value, demand, (graph - res.flow).tocsr(), ivl, snk, ss


def feasible(p: Problem, constrained: np.ndarray | None = None, no_floor: np.ndarray | None = None) -> bool:
    if constrained is None:
        constrained = np.ones(p.n_intervals, dtype=bool)
    flow, demand, *_ = _flow(p, constrained, no_floor)
    return flow >= demand


def _cut_intervals(p: Problem, constrained: np.ndarray) -> tuple[np.ndarray, float]:
    """Intervals whose constraint crosses the minimum cut, and the unplaceable energy."""
    flow, demand, residual, ivl, snk, ss = _flow(p, constrained)
    residual.data[residual.data < 0] = 0
    residual.eliminate_zeros()
    reach = np.zeros(residual.shape[0], dtype=bool)
    reach[breadth_first_order(residual, ss, directed=True, return_predecessors=False)] = True
    crossing = constrained & (reach[ivl] != reach[snk])
    return np.flatnonzero(crossing), (demand - flow) / WH


def find_conflicts(p: Problem, relaxed: np.ndarray | None = None, max_rounds: int = 5,
                   max_filter: int = 48) -> list[Conflict]:
    """Irreducible conflicts, one per round; each round relaxes the intervals found before.

    ``relaxed`` marks intervals already judged on their own (outside their band): they are
    not asked to match again, so a conflict here is one the per-interval test did not show.
    """
    constrained = np.ones(p.n_intervals, dtype=bool) if relaxed is None else ~relaxed
    conflicts: list[Conflict] = []
    for _ in range(max_rounds):
        if not constrained.any() or feasible(p, constrained):
            break
        candidates, shortfall = _cut_intervals(p, constrained)
        core = np.zeros(p.n_intervals, dtype=bool)
        core[candidates] = True
        if not candidates.size or feasible(p, core):
            core = constrained.copy()  # the cut did not isolate it (rounding): keep all
        if core.sum() <= max_filter:
            for i in np.flatnonzero(core):
                core[i] = False
                if feasible(p, core):
                    core[i] = True
        members = np.flatnonzero(core)
        # Which way the readings are off: if the set is satisfiable once its readings may be
        # lower than metered, the site meter read more than the sessions can have drawn; the
        # culprit is then the reading most above its estimate, else the one most below.
        too_high = feasible(p, core, no_floor=core)
        signed = p.signed_deviation if len(p.signed_deviation) == p.n_intervals else np.zeros(p.n_intervals)
        culprit = int(members[np.argmax(signed[members] if too_high else -signed[members])])
        sessions = np.unique(p.edge_s[np.isin(p.edge_i, members)])
        conflicts.append(Conflict(tuple(int(i) for i in members), tuple(int(s) for s in sessions),
                                  culprit, float(shortfall)))
        constrained &= ~core
    return conflicts


def components(n_sessions: int, n_intervals: int, edge_s: np.ndarray, edge_i: np.ndarray) -> np.ndarray:
    """Component label per interval: intervals tied together by sessions that span them."""
    n = n_sessions + n_intervals
    g = coo_matrix((np.ones(len(edge_s)), (edge_s, n_sessions + edge_i)), shape=(n, n))
    _, labels = connected_components(g, directed=False)
    return labels


def solve_site(p: Problem, relaxed: np.ndarray, **kw) -> list[Conflict]:
    """``find_conflicts`` per independent group of intervals (sessions tie intervals together)."""
    labels = components(p.n_sessions, p.n_intervals, p.edge_s, p.edge_i)
    ilab = labels[p.n_sessions:]
    slab = labels[:p.n_sessions]
    out: list[Conflict] = []
    for lab in np.unique(ilab):
        imask = ilab == lab
        if relaxed[imask].all():
            continue
        smask = slab == lab
        iidx, sidx = np.flatnonzero(imask), np.flatnonzero(smask)
        imap = np.full(p.n_intervals, -1)
        imap[iidx] = np.arange(len(iidx))
        smap = np.full(p.n_sessions, -1)
        smap[sidx] = np.arange(len(sidx))
        emask = imask[p.edge_i]
        sub = Problem(
            e_lo=p.e_lo[sidx], e_hi=p.e_hi[sidx], free_lo=p.free_lo[sidx], free_hi=p.free_hi[sidx],
            lo=p.lo[iidx], hi=p.hi[iidx], edge_s=smap[p.edge_s[emask]], edge_i=imap[p.edge_i[emask]],
            edge_lo=p.edge_lo[emask], edge_hi=p.edge_hi[emask],
            signed_deviation=p.signed_deviation[iidx] if len(p.signed_deviation) else np.zeros(len(iidx)),
        )
        for c in find_conflicts(sub, relaxed[iidx], **kw):
            out.append(Conflict(tuple(int(iidx[i]) for i in c.intervals), tuple(int(sidx[s]) for s in c.sessions),
                                int(iidx[c.culprit]), c.shortfall_kwh))
    return out


def judge(bands, edges, max_rounds: int = 5, max_filter: int = 48):
    """Joint verdict per site interval (polars frames in, one out).

    ``bands``: one row per metered site interval (``site_id, interval_start_at, admit_lo_kwh,
    admit_hi_kwh, outside_band, ems_ev_energy_kwh, sessions_energy_kwh, tolerance_kwh``); ``edges``: per session
    and site interval (``site_interval_at`` null for unmetered ones) ``least_kwh, most_kwh``, with
    ``session_least_kwh, session_most_kwh``. Returns ``bands`` with ``conflict_no`` (per site, 1..),
    ``is_conflict_culprit``, ``conflict_intervals``, ``conflict_sessions`` and
    ``conflict_shortfall_kwh`` on the culprit row of each conflict.
    """
    import polars as pl

    out_cols = {
        "conflict_no": pl.Int64, "is_conflict_culprit": pl.Boolean,
        "conflict_intervals": pl.List(pl.Datetime("us", "UTC")), "conflict_sessions": pl.List(pl.Utf8),
        "conflict_shortfall_kwh": pl.Float64,
    }
    rows: list[dict] = []
    bands = bands.sort("site_id", "interval_start_at")
    edges_by_site = {k[0]: g for k, g in edges.partition_by("site_id", as_dict=True).items()} if len(edges) else {}
    for (site,), b in bands.partition_by("site_id", as_dict=True, maintain_order=True).items():
        e = edges_by_site.get(site)
        if e is None or not len(e):
            continue
        times = b["interval_start_at"].to_list()
        ipos = {t: k for k, t in enumerate(times)}
        keys = sorted(set(e["session_key"].to_list()))
        spos = {k: n for n, k in enumerate(keys)}
        ns = len(keys)
        sess = e.group_by("session_key").agg(pl.col("session_least_kwh").first(), pl.col("session_most_kwh").first())
        e_lo, e_hi = np.zeros(ns), np.zeros(ns)
        for k, lo_, hi_ in sess.iter_rows():
            e_lo[spos[k]], e_hi[spos[k]] = lo_ or 0.0, hi_ or 0.0
        metered = e.filter(pl.col("site_interval_at").is_not_null() & pl.col("site_interval_at").is_in(times))
        free = e.filter(~(pl.col("site_interval_at").is_not_null() & pl.col("site_interval_at").is_in(times)))
        free_lo, free_hi = np.zeros(ns), np.zeros(ns)
        for k, lo_, hi_ in free.group_by("session_key").agg(pl.col("least_kwh").sum(), pl.col("most_kwh").sum()).iter_rows():
            free_lo[spos[k]], free_hi[spos[k]] = lo_, hi_
        p = Problem(
            e_lo=e_lo, e_hi=np.maximum(e_hi, e_lo), free_lo=free_lo, free_hi=free_hi,
            lo=b["admit_lo_kwh"].to_numpy().astype(float), hi=b["admit_hi_kwh"].to_numpy().astype(float),
            edge_s=np.array([spos[k] for k in metered["session_key"].to_list()], dtype=np.int64),
            edge_i=np.array([ipos[t] for t in metered["site_interval_at"].to_list()], dtype=np.int64),
            edge_lo=metered["least_kwh"].to_numpy().astype(float),
            edge_hi=metered["most_kwh"].to_numpy().astype(float),
            # in tolerances, so a large interval's ordinary spread does not outweigh a
            # small interval that is off by half
            signed_deviation=(b["ems_ev_energy_kwh"].to_numpy().astype(float)
                              - b["sessions_energy_kwh"].to_numpy().astype(float))
            / np.maximum(b["tolerance_kwh"].to_numpy().astype(float), 1e-6),
        )
        if not len(p.edge_s):
            continue
        relaxed = b["outside_band"].fill_null(False).to_numpy().astype(bool)
        for no, c in enumerate(solve_site(p, relaxed, max_rounds=max_rounds, max_filter=max_filter), start=1):
            rows.append({
                "site_id": site, "interval_start_at": times[c.culprit], "conflict_no": no,
                "is_conflict_culprit": True,
                "conflict_intervals": sorted(times[i] for i in c.intervals),
                "conflict_sessions": sorted(keys[s] for s in c.sessions),
                "conflict_shortfall_kwh": c.shortfall_kwh,
            })
    found = pl.DataFrame(rows, schema={"site_id": pl.Utf8, "interval_start_at": pl.Datetime("us", "UTC"),
                                       **out_cols})
    bands = bands.with_columns(pl.col("interval_start_at").cast(pl.Datetime("us", "UTC")))
    return bands.join(found, on=["site_id", "interval_start_at"], how="left").with_columns(
        pl.col("is_conflict_culprit").fill_null(False))
