"""Platt calibration and ECE."""
from __future__ import annotations

import numpy as np
import pytest

from katazuke.errors import ConfigError, InputError
from katazuke.perception.speech import Calibration, expected_calibration_error, fit_platt
from katazuke.perception.speech.recognizer import default_calibration_path


def _synthetic(n: int, rng: np.random.Generator):
    x = rng.normal(-0.5, 0.3, n)                       # avg log-prob
    p = 1 / (1 + np.exp(-(6 * x + 3)))                 # true P(right)
    y = rng.random(n) < p
    F = np.stack([x, np.zeros(n), rng.random(n) * 0.1, np.full(n, 2.0)], axis=1)
    return F, y, p


def test_platt_recovers_a_calibrated_map(tmp_path) -> None:
    rng = np.random.default_rng(3)
    F, y, _ = _synthetic(4000, rng)
    cal = fit_platt(F, y, "whisper-test")
    Ft, yt, pt = _synthetic(4000, rng)
    p = cal.probability(Ft)
    assert np.corrcoef(p, pt)[0, 1] > 0.98
    assert expected_calibration_error(p, yt) < 0.04
    # a miscalibrated score (too confident) has a larger ECE
    assert expected_calibration_error(np.clip(pt * 1.6, 0, 1), yt) > 0.1
    cal.save(tmp_path / "c.json")
    again = Calibration.load(tmp_path / "c.json")
    np.testing.assert_allclose(again.probability(Ft), p)


def test_calibration_errors() -> None:
    with pytest.raises(InputError, match="only right or only wrong"):
        fit_platt(np.zeros((5, 4)), np.ones(5, bool), "x")
    with pytest.raises(ConfigError, match="not found.*save-calibration"):
        Calibration.load("/nonexistent/c.json")


@pytest.mark.parametrize("engine", ["whisper-base", "whisper-tiny.en"])
def test_packaged_calibration_exists(engine: str) -> None:
    cal = Calibration.load(default_calibration_path(engine))
    assert cal.engine == engine
    assert cal.fitted_on["voices"] and cal.fitted_on["hypotheses"] > 0
    # more confident decoder scores never lower the probability
    lo = cal.probability(np.array([[-1.0, 0.0, 0.05, 2.0]]))[0]
    hi = cal.probability(np.array([[-0.1, 0.0, 0.05, 2.0]]))[0]
    assert hi > lo
