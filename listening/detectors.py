"""The early-warning tests, as pure functions of a watch's figures (no database): a spike in
volume, a shift to negative sentiment. Each compares the current window with the recent baseline
and says nothing below a minimum volume, so a quiet topic going from one post to three is not an
alarm. `measures.evaluate` feeds them and `services` raises what they find.

Spike: the posts in the window are compared with a Poisson count whose mean is the baseline's
rate over the window's length (never below SPIKE_FLOOR, so an empty baseline does not make
every post a surprise), over a baseline at least BASELINE_WINDOWS windows long. An alarm needs
all three: at least `min_volume` posts, at least SPIKE_RATIO times the expected count, and a
chance below SPIKE_P_VALUE of seeing so many by chance. With the defaults, a topic that runs at
2 posts a minute raises nothing until about 90 posts in 15 minutes (three times its usual 30),
and a steady stream, checked every minute for a day, has less than one chance in a thousand of
ever raising one. (alerts.evaluate also tries the window's last third, where a sharp surge
shows a collection or two sooner.)

Negative shift: the window's share of negative posts among those scored is compared with the
baseline's (smoothed by one post each way) by a one-sided z-test on a proportion. An alarm needs
at least `min_volume` scored posts in the window and in the baseline, a rise of NEGATIVE_SHIFT in
the share, and z above NEGATIVE_Z.
"""

import math
from dataclasses import dataclass

SPIKE_RATIO = 3.0
SPIKE_P_VALUE = 1e-6
SPIKE_FLOOR = 1.0
# The baseline must span this many windows: a shorter one is too noisy a measure of "usual".
BASELINE_WINDOWS = 4
NEGATIVE_SHIFT = 0.25
NEGATIVE_Z = 4.0


@dataclass(frozen=True)
class Spike:
    observed: int
    expected: float
    ratio: float
    p_value: float


@dataclass(frozen=True)
class NegativeShift:
    negative: int
    scored: int
    share: float
    baseline_share: float
    z: float


def poisson_tail(observed: int, mean: float) -> float:
    """P(X >= observed) for X ~ Poisson(mean), summed in logs so that large counts neither
    overflow nor underflow before the answer does."""
    if observed <= 0:
        return 1.0
    if mean <= 0:
        return 0.0
    # Below the mean the tail is near 1: take 1 - P(X < observed) instead.
    if observed <= mean:
        return max(0.0, 1.0 - _poisson_head(observed - 1, mean))
    return min(1.0, _poisson_tail_sum(observed, mean))


def _poisson_tail_sum(low: int, mean: float) -> float:
    """P(X >= low), for low above the mean, where the terms only fall: summed relative to the
    first, which is scaled back at the end, so that a tail whose every term is below the
    smallest float still sums to its (tiny) value rather than to nothing."""
    log_first = low * math.log(mean) - mean - math.lgamma(low + 1)
    relative, total, k = 1.0, 0.0, low
    while True:
        total += relative
        if relative < total * 1e-17:
            return math.exp(log_first) * total
        k += 1
        relative *= mean / k


def _poisson_head(high: int, mean: float) -> float:
    """P(X <= high), for high at or below the mean, where the terms only rise: summed downwards
    relative to the last, as above."""
    log_last = high * math.log(mean) - mean - math.lgamma(high + 1)
    relative, total, k = 1.0, 1.0, high
    while k > 0:
        relative *= k / mean
        total += relative
        if relative < total * 1e-17:
            break
        k -= 1
    return math.exp(log_last) * total


def spike(
    *, observed: int, baseline: int, baseline_minutes: float, window_minutes: int, min_volume: int
) -> Spike | None:
    """A spike when `observed` posts in the window are too many for the baseline's rate; None
    when the baseline is shorter than BASELINE_WINDOWS windows or the test says no."""
    if observed < max(1, min_volume) or baseline_minutes < BASELINE_WINDOWS * window_minutes:
        return None
    expected = max(SPIKE_FLOOR, baseline / baseline_minutes * window_minutes)
    ratio = observed / expected
    if ratio < SPIKE_RATIO:
        return None
    p_value = poisson_tail(observed, expected)
    if p_value > SPIKE_P_VALUE:
        return None
    return Spike(
        observed=observed, expected=round(expected, 3), ratio=round(ratio, 2), p_value=p_value
    )


def negative_shift(
    *, negative: int, scored: int, baseline_negative: int, baseline_scored: int, min_volume: int
) -> NegativeShift | None:
    """A shift when the window's negative share rose well above the baseline's; None when either
    has too few scored posts or the test says no."""
    floor = max(1, min_volume)
    if scored < floor or baseline_scored < floor:
        return None
    share = negative / scored
    baseline_share = (baseline_negative + 1) / (baseline_scored + 2)
    if share - baseline_share < NEGATIVE_SHIFT:
        return None
    z = (share - baseline_share) / math.sqrt(baseline_share * (1 - baseline_share) / scored)
    if z < NEGATIVE_Z:
        return None
    return NegativeShift(
        negative=negative,
        scored=scored,
        share=round(share, 3),
        baseline_share=round(baseline_share, 3),
        z=round(z, 2),
    )
