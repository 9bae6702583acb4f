"""pipeline.attribution: the joint feasibility test and its irreducible conflicts."""

import numpy as np

from pipeline.attribution import Problem, feasible, find_conflicts, solve_site


def one_session(ems, energy=3.0, most=3.0, tol=0.2):
    n = len(ems)
    ems = np.array(ems, dtype=float)
    return Problem(
        e_lo=np.array([energy]), e_hi=np.array([energy]), free_lo=np.zeros(1), free_hi=np.zeros(1),
        lo=np.maximum(ems - tol, 0), hi=ems + tol, edge_s=np.zeros(n, dtype=int), edge_i=np.arange(n),
        edge_lo=np.zeros(n), edge_hi=np.full(n, most), signed_deviation=(ems - energy / n) / tol,
    )


def test_a_layout_that_exists_is_feasible():
    assert feasible(one_session([1.0, 1.0, 0.5, 0.5]))
    assert find_conflicts(one_session([3.0, 0.0, 0.0, 0.0])) == []


def test_too_much_metered_energy_gives_a_smallest_conflicting_pair():
    first, *rest = find_conflicts(one_session([2.5, 2.5, 2.5]), max_rounds=5)
    # any two readings of 2.3+ kWh already exceed the 3 kWh session; the rest is feasible
    assert len(first.intervals) == 2 and first.sessions == (0,)
    assert first.shortfall_kwh > 0
    assert all(len(c.intervals) <= 2 for c in rest)


def test_energy_never_metered_needs_the_whole_window():
    (c,) = find_conflicts(one_session([0.0, 0.0, 0.0]))
    assert c.intervals == (0, 1, 2) and abs(c.shortfall_kwh - 2.4) < 0.01


def test_intervals_judged_on_their_own_are_left_out():
    p = one_session([2.5, 2.5, 2.5])
    assert find_conflicts(p, np.array([True, True, False])) == []


def test_unmetered_intervals_take_what_the_session_can_put_there():
    p = one_session([0.0, 0.0, 0.0])
    p.free_hi = np.array([3.0])
    assert feasible(p)


def test_independent_groups_are_solved_apart():
    # two sessions with disjoint windows; only the second one's intervals conflict
    p = Problem(
        e_lo=np.array([1.0, 3.0]), e_hi=np.array([1.0, 3.0]), free_lo=np.zeros(2), free_hi=np.zeros(2),
        lo=np.array([0.8, 0.0, 0.0]), hi=np.array([1.2, 0.2, 0.2]),
        edge_s=np.array([0, 1, 1]), edge_i=np.array([0, 1, 2]), edge_lo=np.zeros(3), edge_hi=np.array([1.0, 3.0, 3.0]),
        signed_deviation=np.array([0.0, -7.5, -7.5]),
    )
    (c,) = solve_site(p, np.zeros(3, dtype=bool))
    assert c.intervals == (1, 2) and c.sessions == (1,)


def test_the_culprit_is_the_reading_off_in_the_direction_of_the_conflict():
    # 3 kWh in a 4-interval window; readings 0.9, 0.9, 2.4 (sum 4.2): too much was metered.
    # The largest reading above its estimate (0.75) is the culprit.
    (c,) = find_conflicts(one_session([0.9, 0.9, 2.4, 0.0]), max_rounds=1)
    assert c.culprit == 2
    # Nothing metered where the session must have drawn: the reading most below its estimate.
    (c,) = find_conflicts(one_session([0.0, 0.2, 0.2, 0.2], energy=3.0), max_rounds=1)
    assert c.culprit == 0
