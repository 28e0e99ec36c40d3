"""Numbers of a run, per mode: accuracy with its 95 % Wilson interval, cost per item."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from thinkchain.chain.answers import Vote, extract_answer_for, same_answer, vote
from thinkchain.eval.records import Record

# The two-sided 95 % quantile of the standard normal distribution.
Z95 = 1.959963984540054


def wilson_interval(correct: int, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of ``correct`` successes in ``n`` trials.

    Unlike the normal approximation p ± z·sqrt(p(1-p)/n) it stays inside [0, 1] and does not
    collapse to a point at 0 % or 100 %, which matters for small runs and easy modes.
    """
    if n <= 0:
        return (0.0, 1.0)
    if not 0 <= correct <= n:
        raise ValueError(f"correct ({correct}) must be between 0 and n ({n})")
    p = correct / n
    z2 = z * z
    denominator = 1 + z2 / n
    centre = (p + z2 / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / denominator
    # At 0 and n the bound is exactly 0 (or 1); say so rather than leave a rounding error.
    low = 0.0 if correct == 0 else max(0.0, centre - half)
    high = 1.0 if correct == n else min(1.0, centre + half)
    return (low, high)


@dataclass(frozen=True)
class ModeSummary:
    mode: str
    items: int
    correct: int
    errors: int  # items whose chain failed (counted as incorrect)
    low: float
    high: float
    mean_steps: float
    mean_completion_tokens: float
    mean_prompt_tokens: float
    seconds_per_item: float
    correct_per_1k_tokens: float | None  # None when nothing was generated
    # Repeated steps and degenerate outputs cut by the chain (loops that were stopped).
    cut: int = 0

    @property
    def accuracy(self) -> float:
        return self.correct / self.items if self.items else 0.0


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def summarize_mode(mode: str, records: Sequence[Record]) -> ModeSummary:
    correct = sum(1 for r in records if r.correct)
    low, high = wilson_interval(correct, len(records))
    generated = sum(r.completion_tokens for r in records)
    return ModeSummary(
        mode=mode,
        items=len(records),
        correct=correct,
        errors=sum(1 for r in records if r.error is not None),
        low=low,
        high=high,
        mean_steps=_mean([r.steps for r in records]),
        mean_completion_tokens=_mean([r.completion_tokens for r in records]),
        mean_prompt_tokens=_mean([r.prompt_tokens for r in records]),
        seconds_per_item=_mean([r.seconds for r in records]),
        correct_per_1k_tokens=1000 * correct / generated if generated else None,
        cut=sum(int(r.extra.get("cut", 0) or 0) for r in records),
    )


def summarize(records: Iterable[Record], modes: Sequence[str]) -> list[ModeSummary]:
    """One summary per mode, in the order given; modes without records are left out."""
    by_mode: dict[str, list[Record]] = {m: [] for m in modes}
    for record in records:
        if record.mode in by_mode:
            by_mode[record.mode].append(record)
    return [summarize_mode(m, rs) for m, rs in by_mode.items() if rs]


def accuracy_by_level(
    records: Iterable[Record], modes: Sequence[str]
) -> dict[str, dict[str, tuple[int, int]]]:
    """level -> mode -> (correct, items), for datasets with difficulty levels."""
    table: dict[str, dict[str, tuple[int, int]]] = {}
    for record in records:
        if record.level is None or record.mode not in modes:
            continue
        row = table.setdefault(record.level, {})
        correct, items = row.get(record.mode, (0, 0))
        row[record.mode] = (correct + int(record.correct), items + 1)
    return table


def exact_mcnemar(only_first: int, only_second: int) -> float:
    """Two-sided exact McNemar p-value for paired right/wrong outcomes.

    Only the items the two modes disagree on carry information; under "no difference" each
    is equally likely to go either way, so the smaller count is a binomial(b + c, 1/2) tail.
    Exact rather than the chi-squared form, which is poor for the few disagreements of a
    small run.
    """
    n = only_first + only_second
    if n == 0:
        return 1.0
    smaller = min(only_first, only_second)
    tail = sum(math.comb(n, i) for i in range(smaller + 1)) / 2**n
    return min(1.0, 2 * tail)


@dataclass(frozen=True)
class PairedComparison:
    """One mode against a baseline on the items both answered."""

    mode: str
    baseline: str
    items: int
    both: int  # right in both
    only_mode: int
    only_baseline: int
    neither: int

    @property
    def difference(self) -> float:
        """Accuracy of the mode minus the baseline's, on the shared items."""
        return (self.only_mode - self.only_baseline) / self.items if self.items else 0.0

    @property
    def p_value(self) -> float:
        return exact_mcnemar(self.only_mode, self.only_baseline)


def paired_comparisons(
    records: Iterable[Record], modes: Sequence[str], baseline: str
) -> list[PairedComparison]:
    """Each other mode against ``baseline``, item by item; empty without the baseline."""
    outcome: dict[str, dict[str, bool]] = {m: {} for m in modes}
    for record in records:
        if record.mode in outcome:
            outcome[record.mode][record.id] = record.correct
    base = outcome.get(baseline, {})
    comparisons = []
    for mode in modes:
        if mode == baseline or not base or not outcome[mode]:
            continue
        shared = [i for i in outcome[mode] if i in base]
        pairs = [(outcome[mode][i], base[i]) for i in shared]
        comparisons.append(
            PairedComparison(
                mode=mode,
                baseline=baseline,
                items=len(pairs),
                both=sum(1 for m, b in pairs if m and b),
                only_mode=sum(1 for m, b in pairs if m and not b),
                only_baseline=sum(1 for m, b in pairs if b and not m),
                neither=sum(1 for m, b in pairs if not m and not b),
            )
        )
    return comparisons


def paired_baseline(modes: Sequence[str]) -> str | None:
    """What the other modes are compared with: plain chain-of-thought, the honest baseline,
    else the first mode asked for; None for a single mode."""
    if len(modes) < 2:
        return None
    return "cot" if "cot" in modes else modes[0]


@dataclass(frozen=True)
class VerificationEffect:
    """What the verification step of one ``+verify`` mode did to the answers it checked."""

    mode: str
    chains: int  # chains checked: one per item, or one per sample under self-consistency
    revised: int
    fixed: int  # a wrong answer revised to the right one
    broken: int  # a right answer revised to a wrong one
    wrong_to_wrong: int
    unknown: int  # revised to a wrong answer, by a record that did not keep the one before
    per_sample: bool = False  # self-consistency: samples counted on their own, before the vote


@dataclass(frozen=True)
class _Check:
    """One chain's verification: whether it revised the answer, and whether the answer was
    right before the check (None: not kept) and after it."""

    revised: bool
    right_before: bool | None
    right_after: bool
    of_sample: bool = False  # the check of one sample of self-consistency


def _checks(record: Record) -> list[_Check]:
    def right(text: object) -> bool | None:
        if not isinstance(text, str):
            return None
        return same_answer(extract_answer_for(text, record.gold), record.gold)

    extra = record.extra
    flags = extra.get("samples_revised")
    if isinstance(flags, list):  # sc+verify: every sample is a chain with its own check
        after = extra.get("sample_answers") or []
        before = extra.get("sample_answers_before_check") or []
        return [
            _Check(bool(flag), right(text), bool(right(answer)), of_sample=True)
            for flag, answer, text in zip(flags, after, before, strict=False)
        ]
    if "revised" not in extra:
        return []
    return [_Check(bool(extra["revised"]), right(extra.get("answer_before_check")), record.correct)]


def verification_effects(
    records: Iterable[Record], modes: Sequence[str]
) -> list[VerificationEffect]:
    """Per ``+verify`` mode: how many answers the check revised, and in which direction."""
    by_mode: dict[str, list[_Check]] = {m: [] for m in modes}
    for record in records:
        if record.mode in by_mode:
            by_mode[record.mode].extend(_checks(record))
    effects = []
    for mode, checks in by_mode.items():
        if not checks:
            continue
        revised = [c for c in checks if c.revised]
        # A revision replaces an answer with a different one, so a right answer after it
        # means a wrong one before, even where the record did not keep it.
        before = [
            c.right_before if c.right_before is not None else (False if c.right_after else None)
            for c in revised
        ]
        pairs = list(zip(before, (c.right_after for c in revised), strict=True))
        effects.append(
            VerificationEffect(
                mode=mode,
                chains=len(checks),
                revised=len(revised),
                fixed=sum(1 for b, a in pairs if b is False and a),
                broken=sum(1 for b, a in pairs if b is True and not a),
                wrong_to_wrong=sum(1 for b, a in pairs if b is False and not a),
                unknown=sum(1 for b, _ in pairs if b is None),
                per_sample=any(c.of_sample for c in checks),
            )
        )
    return effects


@dataclass(frozen=True)
class AgreementGroup:
    """Self-consistency items whose vote agreed to the same degree, and how many were right."""

    mode: str
    votes: int  # samples that gave the winning answer
    samples: int  # samples started (early stopping may have left the rest out)
    items: int
    correct: int

    @property
    def accuracy(self) -> float:
        return self.correct / self.items if self.items else 0.0


def sample_vote(record: Record) -> Vote | None:
    """The vote of an sc record taken again from its stored sample answers, read with today's
    normaliser; None for a record that kept no sample answers."""
    texts = record.extra.get("sample_answers")
    if not isinstance(texts, list) or not texts:
        return None
    return vote([extract_answer_for(t, record.gold) for t in texts])


def vote_agreement(records: Iterable[Record], modes: Sequence[str]) -> list[AgreementGroup]:
    """Per sc mode, items grouped by "winner's votes of samples run", most agreement first.

    The vote is taken again from the stored sample answers, so a rescored run groups its
    items by the vote that decided them now.
    """
    groups: dict[tuple[str, int, int], list[bool]] = {}
    for record in records:
        result = sample_vote(record) if record.mode in modes else None
        if result is None:
            continue
        votes = result.counts.get(result.winner, 0) if result.winner else 0
        started = len(record.extra["sample_answers"])
        groups.setdefault((record.mode, votes, started), []).append(record.correct)
    order = {mode: i for i, mode in enumerate(modes)}
    keys = sorted(groups, key=lambda k: (order[k[0]], -k[1] / k[2], -k[2]))
    return [AgreementGroup(*key, items=len(groups[key]), correct=sum(groups[key])) for key in keys]
