"""Search v2 (settings.acquisition="ehvi"): EHVI acquisition, transfer switch, greedy-HV
front, whole budget spent, same seed same front, resume to the same front."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from moo_compress import ehvi_rounds
from moo_compress.candidate_pool import CandidatePool
from moo_compress.front_choice import deployment_rows
from moo_compress.search import N_REFERENCE, FleetSearch, SearchSettings
from moo_compress.store import MeasurementStore

TINY = Path(__file__).parent / "problems" / "tiny_fleet.py"


def tiny(seed: int = 3):
    spec = importlib.util.spec_from_file_location("tiny_for_v2", TINY)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.TinyFleet(seed=seed)


def run(path: Path, seed: int = 3, budget: int = 96):
    settings = SearchSettings(
        budget=budget,
        accuracy_budget=30,
        pop_size=8,
        generations=3,
        max_front=6,
        seed=seed,
        acquisition="ehvi",
    )
    problem = tiny(seed)
    with MeasurementStore(path, "tiny", "run") as store:
        search = FleetSearch(problem, store, settings)
        return search, search.run()


@pytest.fixture(scope="module")
def v2_run(tmp_path_factory):
    return run(tmp_path_factory.mktemp("v2") / "m.sqlite")


def test_v2_measures_every_round_within_the_budget(v2_run):
    # one round per generation, then rounds that spend the final front's unused
    # reservation; every round measures at least one pair
    search, result = v2_run
    record = result.acquisition
    assert record["rounds"] >= search.settings.generations
    spent = sum(result.measurements)
    assert spent <= search.settings.budget
    initial = len(search.initial_configurations()) * result.clusters.k
    assert record["stopped_early"] or spent >= initial + record["rounds"]
    timing = record["round_seconds"]
    assert 0 < timing["select_s"]["mean"] <= timing["select_s"]["max"]
    assert 0 < timing["refit_s"]["mean"] <= timing["refit_s"]["max"]


def test_v2_spends_the_budget_or_says_it_stopped_early(v2_run):
    search, result = v2_run
    spent = sum(result.measurements)
    k = result.clusters.k
    if not result.acquisition["stopped_early"]:
        # what is left is at most the unused reservation of the reference rows and one
        # final-front configuration that did not fit, and on a fleet that ranks alike the
        # other clusters' share of the chosen rows that the proxy screened out
        screen = result.acquisition["screen"]
        screened_out = (k - 1) * screen["chosen"] if screen else 0
        assert spent >= search.settings.budget - (N_REFERENCE + 1) * k - screened_out
    assert spent <= search.settings.budget


def test_v2_screens_the_final_front_on_the_proxy_of_an_alike_fleet(v2_run):
    # the tiny field-aged fleet only rescales one SKU, so its clusters rank alike: the
    # chosen final front is measured on the proxy cluster first, and only the rows that
    # add hypervolume there are measured on the other clusters (as `nominal` verifies
    # only what it reports)
    search, result = v2_run
    assert result.acquisition["fleet_similarity"]["alike"]
    screen = result.acquisition["screen"]
    assert 1 <= screen["verified"] <= search.front_cap
    initial = len(search.initial_configurations())
    for c, n in enumerate(result.measurements):
        if c != screen["proxy"]:
            assert n <= initial + screen["verified"] + N_REFERENCE
    assert result.measurements[screen["proxy"]] > max(
        n for c, n in enumerate(result.measurements) if c != screen["proxy"]
    )


def test_v2_does_not_screen_where_the_clusters_rank_differently(v2_run, monkeypatch):
    search, result = v2_run
    judged = search.rounds.acquisition.judge(search.clusters)
    unlike = type(judged)(judged.proxy, judged.spearman, judged.r2, judged.common, False)
    monkeypatch.setattr(search.rounds.acquisition, "judge", lambda clusters: unlike)
    before = search.session.n_latency
    front = np.asarray(result.front.X)
    assert search.rounds.screen(front) is front
    assert search.session.n_latency == before  # nothing measured


def test_v2_records_the_transfer_choice_and_its_evidence(v2_run):
    _, result = v2_run
    evidence = result.acquisition["latency_model"]
    assert evidence["choice"] in evidence["loo_nats_per_point"]
    assert result.acquisition["fleet_similarity"]["proxy"] in range(result.clusters.k)


def test_v2_front_is_measured_on_every_cluster(v2_run):
    _, result = v2_run
    front = result.front
    assert 1 <= len(front.X) <= 6
    assert np.isfinite(front.latency).all() and (front.latency > 0).all()


def test_v2_same_seed_same_front_and_resume(v2_run, tmp_path):
    _, first = v2_run
    _, again = run(tmp_path / "m.sqlite")
    np.testing.assert_array_equal(first.front.X, again.front.X)
    np.testing.assert_array_equal(first.front.latency, again.front.latency)
    _, resumed = run(tmp_path / "m.sqlite")  # every measurement now comes from the store
    np.testing.assert_array_equal(first.front.X, resumed.front.X)


def test_unknown_acquisition_is_refused():
    with pytest.raises(ValueError, match="acquisition must be one of"):
        SearchSettings(acquisition="ucb")


def test_hypervolume_counts_only_the_problems_accuracy_range(v2_run):
    # the loss reference point is the baseline's predicted loss plus loss_margin: a
    # configuration that loses more adds no hypervolume, one just inside does
    search, result = v2_run
    scale = search.reference_scale()
    accuracy = search.objectives.predict_accuracy(search.problem.baseline()[None])[0][0]
    # (predicted when first asked, by an earlier fit of the accuracy model)
    assert scale[0] == pytest.approx(1.0 - accuracy + search.problem.loss_margin, abs=1e-3)
    fast = 0.5 * scale[1:]
    assert search._hypervolume(np.array([[1.01 * scale[0], *fast]])) == 0.0
    assert search._hypervolume(np.array([[0.99 * scale[0], *fast]])) > 0.0
    # the reported rows were chosen by hypervolume contribution: all within the range
    assert (1.0 - result.front.accuracy <= scale[0]).all()


def test_final_choice_reads_measured_latencies_and_measures_nothing(v2_run, monkeypatch):
    # the final front is chosen on the objectives with every measured latency in place
    # of its prediction; reading them costs no measurement
    search, _ = v2_run
    rounds, session = search.rounds, search.session
    closed = session.store
    with MeasurementStore(closed.path, closed.problem, closed.run_id) as store:
        monkeypatch.setattr(session, "store", store)
        X = rounds.pool.rows()
        known = np.array([[session.known(x, c) for c in range(search.clusters.k)] for x in X])
        assert known.any() and not known.all()
        before = session.n_latency
        F, _ = rounds.plugged(X)
        assert session.n_latency == before
        latency, _ = search.objectives.predict_latency(X)
        rows, cols = np.nonzero(known)
        latency[rows, cols] = search.objectives.measure_latencies(
            [(X[i], c) for i, c in zip(rows, cols, strict=True)]
        )
        np.testing.assert_allclose(F[:, 1:], search.clusters.fleet_objectives(latency))
        predicted, _ = rounds.predicted(X)
        assert not np.allclose(predicted[:, 1:], F[:, 1:])  # the model's mean is not the reading
        opt = X[:3]
        candidates = rounds.final_candidates(opt)
        np.testing.assert_array_equal(candidates[:3], opt)
        assert len(candidates) > 3


def test_the_final_choice_keeps_the_rows_deployed_at_each_drop(v2_run, monkeypatch):
    # among rows whose objectives are known, the choice takes first, for each of the
    # problem's deployment drops, the row fastest in the worst cluster within it
    search, _ = v2_run
    rounds = search.rounds
    monkeypatch.setattr(search.settings, "max_front", 2)
    X = rounds.pool.rows()[:40]
    baseline = search.problem.baseline()[None]
    loss0 = 1.0 - float(search.objectives.predict_accuracy(baseline)[0][0])
    base_ms = search.objectives.predict_latency(baseline)[0]
    rng = np.random.default_rng(0)
    accuracy = 1.0 - loss0 - rng.uniform(0.03, 0.09, len(X))  # beyond every drop
    latency = base_ms * rng.uniform(0.3, 0.9, (len(X), search.clusters.k))
    accuracy[:2] = 1.0 - loss0 - np.array([0.004, 0.015])  # within 0.5 and 2 points
    latency[:2] = base_ms * np.array([[0.95], [0.9]])  # slow: hypervolume skips them
    F = search.problem.objectives(accuracy, latency, search.clusters)
    expected = deployment_rows(F, loss0, (0.005, 0.02)).tolist()
    monkeypatch.setattr(search.problem, "deployment_drops", (0.005, 0.02))
    picks = rounds.greedy_feasible(X, accuracy, latency)
    assert picks.tolist() == expected == [0, 1]
    monkeypatch.setattr(search.problem, "deployment_drops", ())
    plain = rounds.greedy_feasible(X, accuracy, latency)
    assert len(plain) == 2 and plain.tolist() != [0, 1]  # hypervolume alone picks others


def test_exploration_is_bounded_by_new_configurations(v2_run, monkeypatch):
    # each configuration new to the pool costs a real accuracy evaluation under a cheap
    # evaluator: the posterior exploration stops before it could exceed
    # P * (generations - 1) of them, else after EXPLORE_GENERATIONS * generations
    search, result = v2_run
    rounds, session = search.rounds, search.session
    generations = search.settings.generations
    start = rounds.pool.rows()[: search.settings.pop_size]
    allowed = len(start) * (generations - 1)
    assert result.acquisition["explore"]["new_configurations"] <= allowed
    monkeypatch.setattr(rounds, "pool", CandidatePool())
    rounds.pool.add(start)
    closed = session.store
    with MeasurementStore(closed.path, closed.problem, closed.run_id) as store:
        monkeypatch.setattr(session, "store", store)
        explored = []
        for _ in range(2):
            before = len(rounds.pool)
            rounds.explore(start)
            assert rounds.explored["new_configurations"] == len(rounds.pool) - before
            explored.append(tuple(rounds.explored.values()))
    # every row of the first exploration is new (this space is large): it ends as
    # `generations` generations would
    (first, new), (second, again) = explored
    assert (first, new) == (generations, allowed)
    # the same start and seed revisit those rows first: the second runs longer for
    # the same bound
    assert generations < second <= ehvi_rounds.EXPLORE_GENERATIONS * generations
    assert 0 < again <= allowed


def test_reference_rows_hold_back_only_their_missing_pairs(v2_run, monkeypatch):
    # the baseline costs its unmeasured pairs; a row that may depend on the chosen front
    # (the FLOPs-uniform row) costs every active cluster
    search, result = v2_run
    rounds, session, problem = search.rounds, search.session, search.problem
    front = np.asarray(result.front.X)
    n_active = int(search.clusters.active.sum())
    assert list(problem.reference_rows(front)) == ["unpruned", "uniform"]
    closed = session.store
    with MeasurementStore(closed.path, closed.problem, closed.run_id) as store:
        monkeypatch.setattr(session, "store", store)
        assert rounds.reference_cost(front) == n_active  # the baseline was measured
        baseline_only = {"baseline": problem.baseline()}
        monkeypatch.setattr(problem, "reference_rows", lambda front: baseline_only)
        assert rounds.reference_cost(front) == 0
        monkeypatch.setattr(session, "known", lambda x, c: False)
        assert rounds.reference_cost(front) == n_active


def test_an_alike_fleet_keeps_the_whole_verification_reserved(v2_run, monkeypatch):
    # on a fleet that ranks alike, the slack rounds leave front_cap rows on every active
    # cluster, the chosen front's missing proxy pairs and the reference rows unspent, as
    # `nominal` reserves its verification and measures its own front within its search;
    # on a fleet that does not, only the chosen final front's missing pairs are held back
    search, result = v2_run
    rounds, session = search.rounds, search.session
    opt = np.asarray(result.front.X)
    n_active = int(search.clusters.active.sum())
    asked: list[int] = []
    acquisition = rounds.acquisition
    monkeypatch.setattr(rounds, "acquire", lambda n: asked.append(n) or False)
    monkeypatch.setattr(
        acquisition, "stop", lambda reason: setattr(acquisition, "stopped_early", True)
    )
    monkeypatch.setattr(acquisition, "stopped_early", False)
    monkeypatch.setattr(search.latency_policy, "budget_total", search.latency_policy.budget_total)
    closed = session.store
    with MeasurementStore(closed.path, closed.problem, closed.run_id) as store:
        monkeypatch.setattr(session, "store", store)
        proxy = rounds.alike_proxy()
        assert proxy is not None  # the tiny field-aged fleet only rescales
        candidates = rounds.final_candidates(opt)
        held = search.front_cap * n_active + rounds.reference_cost(candidates)
        monkeypatch.setattr(rounds, "left", lambda: held + 100)  # every chosen row fits
        on_proxy = sum(not session.known(x, proxy) for x in rounds.choose(candidates))
        monkeypatch.setattr(rounds, "left", lambda: held + on_proxy + 1)
        rounds.spend_slack(opt)
        assert asked == [1]
        asked.clear()
        acquisition.stopped_early = False
        monkeypatch.setattr(rounds, "alike_proxy", lambda: None)
        rounds.spend_slack(opt)
        assert len(asked) == 1 and asked[0] > 1


def test_an_alike_fleet_holds_back_the_proxys_front_during_the_generations(v2_run, monkeypatch):
    # a one-device search measures its own final front within its budget: on a fleet
    # that ranks alike, each generation's share leaves front_cap more for it
    search, _ = v2_run
    rounds = search.rounds
    asked: list[int] = []
    monkeypatch.setattr(rounds, "acquire", lambda n: asked.append(n) or False)
    monkeypatch.setattr(rounds, "pool", CandidatePool())
    monkeypatch.setattr(search.latency_policy, "remaining", lambda: 40)
    offspring = np.zeros((1, search.space.n_var), dtype=np.int64)
    monkeypatch.setattr(rounds, "alike_proxy", lambda: 0)
    rounds.generation(offspring, generations_left=1)
    monkeypatch.setattr(rounds, "alike_proxy", lambda: None)
    rounds.generation(offspring, generations_left=1)
    assert asked == [40 - search.front_cap, 40]
