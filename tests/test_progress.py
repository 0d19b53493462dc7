import math

import pytest

from styletransfer.progress import time_left_text


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
