import gc
import math

import pytest
import torch

from styletransfer import progress
from styletransfer.progress import StepPace, step_pace, time_left_text


@pytest.mark.parametrize(("seconds", "text"), [
    (0, "a few seconds left"), (7.4, "a few seconds left"), (7.6, "about 10 s left"), (23, "about 25 s left"),
    (57, "about 55 s left"), (58, "about 1 min left"), (100, "about 1.5 min left"), (290, "about 5 min left"),
    (584, "about 9.5 min left"), (586, "about 10 min left"), (3000, "about 50 min left"),
])
def test_time_left_reads_as_a_person_would_say_it(seconds, text):
    assert time_left_text(seconds) == text


@pytest.mark.parametrize("seconds", [-1.0, math.inf, math.nan])
def test_time_left_refuses_what_is_not_a_duration(seconds):
    with pytest.raises(ValueError, match="seconds must be a finite number >= 0"):
        time_left_text(seconds)


def test_step_pace_predicts_from_the_nearest_measured_size():
    p = StepPace()
    assert p.remembered(1000) is None and p.predict(4000, now=(1000, 2.0)) == 8.0  # nothing known: pixel ratio
    p.record(1000, 2.0)
    p.record(4000, 5.0)
    assert p.remembered(1000) == 2.0 and p.remembered(3000) == 3.75 and p.remembered(1200) == 2.4
    # The size running is nearer to 1050 px than any measured: its own pace; 4000 px is remembered.
    assert p.predict(1050, now=(1100, 4.4)) == pytest.approx(4.2) and p.predict(4000, now=(1100, 4.4)) == 5.0
    p.record(4000, 0.0)  # a clock that did not move
    assert p.remembered(4000) == 5.0


def test_step_paces_are_kept_per_model_and_kind_and_go_with_the_model():
    tiny = torch.nn.Linear(1, 1)
    assert step_pace(tiny, "cpu") is step_pace(tiny, "cpu") and step_pace(tiny, "cpu") is not step_pace(tiny, "cuda")
    assert step_pace(torch.nn.Linear(1, 1), "cpu") is not step_pace(tiny, "cpu")
    del tiny
    gc.collect()
    assert not any(isinstance(owner, torch.nn.Linear) for owner in progress._PACES)
