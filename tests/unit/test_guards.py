"""The loop and repeat detectors: they cut real loops and never legitimate text."""

from __future__ import annotations

import random

import pytest

from thinkchain.chain.guards import (
    MAX_PERIOD,
    MIN_REPEATED_SPAN,
    MIN_REPEATS,
    TEMPLATE_RUN,
    DegenerationGuard,
    find_degeneration,
    repeats_earlier,
    why_repeated,
)

PROSE = (
    "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips "
    "in May. In May she sold 48 / 2 = 24 clips, so altogether she sold 48 + 24 = 72 clips. "
)


def reference_period(text: str) -> int | None:
    """The definition, checked period by period: the smallest block repeated at the end."""
    for period in range(1, MAX_PERIOD + 1):
        repeats = max(MIN_REPEATS, -(-MIN_REPEATED_SPAN // period))
        block = text[-period:]
        if len(text) >= period * repeats and not block.isspace():
            if text.endswith(block * repeats):
                return period
    return None


def loop_period(text: str) -> int | None:
    reason = find_degeneration(text)
    if reason is None or "loop" not in reason:
        return None
    return int(reason.rsplit("every ", 1)[1].split()[0])


@pytest.mark.parametrize("period", [1, 2, 7, 8, 9, 33, 120, MAX_PERIOD])
def test_a_block_repeated_at_the_end_is_a_loop_of_its_period(period):
    rng = random.Random(period)
    block = "".join(rng.choice("abcdefgh ,.") for _ in range(period))
    if len(set(block)) < 2:
        block = "ab"[: max(1, period)] * period
    text = PROSE + block * (MIN_REPEATED_SPAN // period + MIN_REPEATS + 1)
    assert loop_period(text) == reference_period(text)
    assert loop_period(text) is not None


def test_the_detector_agrees_with_the_definition_on_random_texts():
    rng = random.Random(0)
    for _ in range(300):
        alphabet = rng.choice(["ab", "abc", "abcdefgh ", "the cat sat on a mat. 0123456789"])
        head = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 400)))
        block = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 60)))
        text = head + block * rng.randint(0, 30)
        assert loop_period(text) == reference_period(text), text


def test_ordinary_prose_tables_and_code_are_not_loops():
    table = "| item | price |\n|---|---|\n" + "".join(
        f"| thing {i} | {i * 3} |\n" for i in range(40)
    )
    code = "\n".join(f"    total += values[{i}]  # add item {i}" for i in range(30))
    for text in (PROSE * 3, table, code):
        assert find_degeneration(text) is None


def test_a_long_run_of_whitespace_degenerates_but_indentation_does_not():
    assert "whitespace" in (find_degeneration(PROSE + " " * 200) or "")
    assert find_degeneration(PROSE + "\n" + " " * 40) is None


def test_the_streaming_guard_fires_once_the_loop_is_plain():
    guard = DegenerationGuard()
    reasons = [guard.feed(word + " ") for word in PROSE.split()]
    assert not any(reasons)
    for _ in range(100):
        reason = guard.feed("I will check again. ")
        if reason:
            break
    assert reason and "loop" in reason


def test_a_step_that_says_again_what_an_earlier_one_said_is_a_repeat():
    earlier = [PROSE, "Check: 72 - 24 = 48, which is what she sold in April."]
    assert repeats_earlier(PROSE, earlier)
    assert repeats_earlier(PROSE.upper().replace(",", ";"), earlier)  # case and punctuation
    assert repeats_earlier(PROSE.replace("altogether", "in total"), earlier)  # nearly the same


def test_different_steps_and_short_steps_differing_by_a_number_are_not_repeats():
    earlier = [PROSE, "x = 3"]
    assert not repeats_earlier("x = 5", earlier)
    other = (
        "Now check the total a second way: 72 clips over two months is 36 a month on average, "
        "and 48 and 24 average to 36 as well, so the sum of 72 is consistent."
    )
    assert not repeats_earlier(other, earlier)
    assert not repeats_earlier("", earlier)


RUN = (
    "Cindy runs at 3 miles per hour. To find the time taken to run half a mile, we use "
    "Time = Distance / Speed = 0.5 / 3 hours, and in minutes 0.5 / 3 × 60 = 10 minutes."
)


def test_a_step_alike_in_wording_but_with_new_numbers_is_new_work():
    walk = (
        RUN.replace("runs at 3 miles", "walks at 1 mile")
        .replace("to run", "to walk")
        .replace("0.5 / 3", "0.5 / 1")
        .replace("= 10", "= 30")
    )
    assert not repeats_earlier(walk, [RUN])  # the next half of the problem, not a loop
    assert repeats_earlier(RUN.replace("we use", "use the formula"), [walk, RUN])


def doubling(day: int) -> str:
    before, after = 5 * 2 ** (day - 1), 5 * 2**day
    return f"Day {day}: the batch is doubled again, so it weighs {before} kg × 2 = {after} kg."


def test_steps_that_only_change_the_numbers_are_a_loop_once_the_run_is_long():
    days = [doubling(day) for day in range(1, TEMPLATE_RUN + 2)]
    # Below the run length: parallel parts of a problem, all fine.
    assert all(why_repeated(days[i], days[:i]) is None for i in range(TEMPLATE_RUN - 1))
    reason = why_repeated(days[TEMPLATE_RUN - 1], days[: TEMPLATE_RUN - 1])
    assert reason == f"it only changes the numbers of the {TEMPLATE_RUN - 1} steps before it"
    # A different step inside the last few breaks the run.
    broken = [*days[: TEMPLATE_RUN - 2], PROSE]
    assert why_repeated(days[TEMPLATE_RUN - 1], broken) is None


def test_a_run_of_long_steps_with_a_word_changed_here_and_there_is_a_loop_too():
    # Long steps (over 200 characters) once slipped through: difflib's "popular character"
    # heuristic made two near-identical texts look 16 % alike.
    said = ["again", "once more", "one more time", "yet again", "as before"]
    days = [
        f"Day {day}: the colony doubles {said[day - 1]}, so it goes from {2**day} to "
        f"{2 ** (day + 1)} cells. We keep doubling the count each day until the dish is full; "
        "the dish holds 1000000 cells and we have not reached it yet, so we carry on to the "
        f"next day. The count on day {day} is {2 ** (day + 1)}, still below the limit of the "
        "dish, so the doubling goes on and the next day doubles it too."
        for day in range(1, TEMPLATE_RUN + 1)
    ]
    assert min(len(day) for day in days) > 300
    reason = why_repeated(days[-1], days[:-1])
    assert reason == f"it only changes the numbers of the {TEMPLATE_RUN - 1} steps before it"


def test_a_plain_repeat_is_named_as_one():
    assert why_repeated(PROSE, [PROSE]) == "it repeats an earlier step"
    assert why_repeated(PROSE, []) is None
