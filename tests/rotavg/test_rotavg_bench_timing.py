"""The rotavg bench times both methods alike: warm-up for each, alternating rounds, medians."""
from __future__ import annotations

from katazuke.bench.rotavg import _interleaved, _thread_state


def test_interleaved_rounds_alternate_and_warm_up_every_function() -> None:
    calls: list[str] = []

    def fn(name: str):
        def call() -> str:
            calls.append(name)
            return f"{name}{len(calls)}"
        return call

    med, out, times = _interleaved({"a": fn("a"), "b": fn("b"), "c": fn("c")}, rounds=4, warmup=2)
    # two warm-up passes, then rounds in order, reversed, in order, reversed
    assert calls == list("abc" * 2 + "abc" + "cba" + "abc" + "cba")
    assert {k: len(v) for k, v in times.items()} == {"a": 4, "b": 4, "c": 4}
    assert out == {"a": "a18", "b": "b17", "c": "c16"}  # the last call's output (round 3: c b a)
    for k, v in times.items():
        s = sorted(v)
        assert med[k] == 0.5 * (s[1] + s[2])


def test_a_slow_phase_lands_on_every_function(monkeypatch) -> None:
    """A load burst during the rounds slows every method of the rounds it covers (a fake
    clock: each call takes 1 s, or 10 s while the machine is "loaded")."""
    import katazuke.bench.rotavg as bench

    state = {"now": 0.0, "calls": 0}

    class Clock:
        @staticmethod
        def perf_counter() -> float:
            return state["now"]

    def work() -> None:
        state["calls"] += 1
        # calls 7..12 = rounds 1 and 2 (after one warm-up pass of 3 calls) are "under load"
        state["now"] += 10.0 if 7 <= state["calls"] <= 12 else 1.0

    monkeypatch.setattr(bench, "time", Clock)
    med, _, times = _interleaved({"ours": work, "init": work, "gtsam": work}, rounds=5, warmup=1)
    assert times == {k: [1.0, 10.0, 10.0, 1.0, 1.0] for k in ("ours", "init", "gtsam")}
    assert med == {"ours": 1.0, "init": 1.0, "gtsam": 1.0}  # the median ignores the burst


def test_thread_state_reports_the_pools_inside_the_limit() -> None:
    from katazuke.perception.rotavg import single_threaded_blas

    with single_threaded_blas():
        t = _thread_state()
    assert t["pools"] is None or all(p["num_threads"] == 1 for p in t["pools"])
    assert isinstance(t["tbb_loaded"], bool)


def test_short_calls_get_rounds_until_the_time_budget_or_the_cap(monkeypatch) -> None:
    import katazuke.bench.rotavg as bench

    state = {"now": 0.0}

    class Clock:
        @staticmethod
        def perf_counter() -> float:
            return state["now"]

    def work() -> None:
        state["now"] += 1.0

    monkeypatch.setattr(bench, "time", Clock)
    fns = {"ours": work, "gtsam": work}
    _, _, t = _interleaved(fns, rounds=3, warmup=0, min_time_s=10.0, max_rounds=20)
    assert len(t["ours"]) == len(t["gtsam"]) == 10  # 10 x 1 s of "ours" reaches 10 s
    _, _, t = _interleaved(fns, rounds=3, warmup=0, min_time_s=10.0, max_rounds=7)
    assert len(t["ours"]) == 7  # capped
    _, _, t = _interleaved(fns, rounds=3, warmup=0, max_rounds=7)
    assert len(t["ours"]) == 3  # no time budget: exactly `rounds`


def test_a_turn_of_several_calls_drops_its_cold_first_call(monkeypatch) -> None:
    """With block > 1 the first call of each turn (caches evicted by the other method) is
    not part of the sample; the sample is the median of the rest."""
    import katazuke.bench.rotavg as bench

    state = {"now": 0.0, "last": None}

    class Clock:
        @staticmethod
        def perf_counter() -> float:
            return state["now"]

    def make(name: str):
        def call() -> None:
            state["now"] += 5.0 if state["last"] != name else 1.0  # cold after a switch
            state["last"] = name
        return call

    monkeypatch.setattr(bench, "time", Clock)
    med, _, t = _interleaved({"ours": make("ours"), "gtsam": make("gtsam")}, rounds=4,
                             warmup=0, block=4)
    assert t["ours"] == [1.0] * 4 and t["gtsam"] == [1.0] * 4
    _, _, t1 = _interleaved({"ours": make("ours"), "gtsam": make("gtsam")}, rounds=4, warmup=0)
    assert sorted(set(t1["ours"] + t1["gtsam"])) == [1.0, 5.0]  # one call per turn: cold ones too
