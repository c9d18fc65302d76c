"""What unstructured pruning ranks weights by, and which weights it compares with each other.

    method = PRUNE_METHODS["wanda"]
    scores = method.score(weight, statistic)   # (out, in); higher = more important, kept
    n, m = parse_pattern("2:4")                # N:M semi-structured pattern, or None for ""

    magnitude  |W|                         no data (Han et al., 2015)
    saliency   |W * dL/dW|                 first-order Taylor estimate of the loss change when a
                                           weight is zeroed (SNIP, Lee et al., 2019); dL/dW summed
                                           over the calibration sequences
    wanda      |W_ij| * ||X_j||_2          weight times the L2 norm of its input feature over the
                                           calibration tokens (Sun et al., 2023)

`statistic` is what the method needs (`needs`): nothing, the gradient ("grad", shaped like W) or
the input norms ("input_norm", (in,)). PRUNE_SCOPES are the groups within which the lowest scores
are removed: `row` (each output row loses the same share: Wanda's comparison group), `layer`
(each matrix) or `global` (one threshold over every prunable matrix). A method's own `scope` is
used when train.prune.scope / --scope is "".
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class Method:
    score: Callable        # (weight (out, in), statistic) -> scores (out, in)
    needs: str | None      # None | "grad" | "input_norm"
    scope: str             # the default comparison group
    description: str


def magnitude(weight, statistic=None):
    return weight.abs()


def saliency(weight, grad):
    return (weight * grad).abs()


def wanda(weight, input_norm):
    return weight.abs() * input_norm[None, :].to(weight.dtype)


CHUNK = 8  # calibration sequences per forward pass


def observe(model, x, handles) -> None:
    """Run the calibration sequences x (N, T) through the model in eval mode, CHUNK at a time, for
    the hooks whose handles are given; the hooks are removed and the mode restored afterwards."""
    was_training = model.training
    model.eval()
    try:
        for start in range(0, len(x), CHUNK):
            model(x[start:start + CHUNK])
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)


def parse_pattern(text: str):
    """"N:M" -> (N, M) with 0 < N < M; "" -> None. ValueError says what is wrong."""
    if not text:
        return None
    parts = text.split(":")
    try:
        n, m = (int(p) for p in parts)
    except ValueError:
        raise ValueError(f"{text!r} is not N:M (e.g. 2:4)") from None
    if not 0 < n < m:
        raise ValueError(f"{text!r}: need 0 < N < M")
    return n, m


PRUNE_SCOPES = {"row": "each output row of each matrix", "layer": "each matrix", "global": "all matrices at once"}

PRUNE_METHODS = {
    "magnitude": Method(magnitude, None, "layer", "|W|"),
    "saliency": Method(saliency, "grad", "layer", "|W * dL/dW| over calibration sequences"),
    "wanda": Method(wanda, "input_norm", "row", "|W| * ||x||_2 of the input over calibration tokens"),
}
