"""Bit-wise coreset sampling (EMQ; METHODS §8): scores, selection, and the statistics we log.

Each width b trains on its own subset S_b of the training set, chosen by per-sample importance
computed with the b-bit model, because what is hard for a 2-bit network is not what is hard for an
8-bit one. It saves time because the widths' gradients on the shared weights are closely aligned,
so what one width learns from its subset transfers to the others.

    scores = el2n_scores(model, dataset)                      # at the model's active width
    keep = select_coreset(scores, 0.2, "topk")                # sorted int64 indices, round(0.2 N) of them
    mean_pairwise_jaccard([keep_b2, keep_b3, keep_b4])        # how much the widths' subsets overlap

EL2N (Paul et al. 2021) = ‖softmax(f_b(x)) − onehot(y)‖₂: large for samples the b-bit model gets
wrong or is unsure about. It is computed in eval mode (running BatchNorm statistics) and without a
graph, in batches of the training batch size (it fits wherever training fits; on CPU, batches of 256
fall out of cache and ran 2x slower per sample than 64). The scoring pass costs one forward per sample
and width, and it counts as training time.

>>> import torch
>>> select_coreset(torch.tensor([0.1, 0.9, 0.5, 0.7]), 0.5, "topk").tolist()
[1, 3]
"""
from __future__ import annotations

import itertools
from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from msq.data import make_loader
from msq.eval_mode import eval_mode

QUANTILES = (0.1, 0.5, 0.9)


def el2n(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Per-sample ‖softmax(logits) − onehot(labels)‖₂ for logits [N, C], labels [N] -> [N]."""
    probs = F.softmax(logits.float(), dim=1)
    return torch.linalg.vector_norm(probs - F.one_hot(labels, probs.shape[1]).float(), dim=1)


@torch.no_grad()
def el2n_scores(model: nn.Module, dataset, device: torch.device | str = "cpu", batch_size: int = 64) -> torch.Tensor:
    """EL2N of every sample of ``dataset`` (index order) at the model's current width -> float [N] on CPU."""
    out = []
    with eval_mode(model), torch.inference_mode():
        for x, y in make_loader(dataset, batch_size, shuffle=False):
            out.append(el2n(model(x.to(device)), y.to(device)).cpu())
    return torch.cat(out)


def random_scores(n: int, generator: torch.Generator) -> torch.Tensor:
    """Uniform scores: top-k of these is a uniformly random subset (the ``score = "random"`` ablation)."""
    return torch.rand(n, generator=generator)


def coreset_size(n: int, fraction: float) -> int:
    return min(n, max(1, int(round(fraction * n))))


def select_coreset(scores: torch.Tensor, fraction: float, selection: str = "topk",
                   generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """Indices (sorted, int64) of ``round(fraction · N)`` samples.

    topk: the highest scores (ties broken by index, so it is deterministic).
    weighted: sampled without replacement with probability ∝ score (plus a small floor, so easy
    samples keep a small chance); deterministic given ``generator``'s seed.
    """
    n = scores.numel()
    k = coreset_size(n, fraction)
    if k == n:
        return torch.arange(n)
    if selection == "topk":
        order = torch.sort(-scores.double(), stable=True).indices   # stable: equal scores keep index order
        picked = order[:k]
    elif selection == "weighted":
        weights = scores.double().clamp_min(0.0)
        weights = weights + 1e-3 * float(weights.max().clamp_min(1e-12)) + 1e-12
        picked = torch.multinomial(weights, k, replacement=False, generator=generator)
    else:
        raise ValueError(f"multibit.selection = {selection!r} is invalid: allowed 'topk' or 'weighted'")
    return torch.sort(picked).values


def jaccard(a: torch.Tensor, b: torch.Tensor) -> float:
    """|A ∩ B| / |A ∪ B| of two index sets."""
    sa, sb = set(a.tolist()), set(b.tolist())
    union = len(sa | sb)
    return len(sa & sb) / union if union else 1.0


def mean_pairwise_jaccard(index_sets: Sequence[torch.Tensor]) -> float:
    """Mean Jaccard similarity over all pairs of subsets (1.0 with fewer than two sets)."""
    pairs = list(itertools.combinations(index_sets, 2))
    return sum(jaccard(a, b) for a, b in pairs) / len(pairs) if pairs else 1.0


def score_summary(scores: torch.Tensor) -> dict[str, float]:
    """mean and the 10/50/90% quantiles of a score vector (what the dashboard plots per width)."""
    q = torch.quantile(scores.double(), torch.tensor(QUANTILES, dtype=torch.float64))
    out = {"mean": float(scores.double().mean())}
    out.update({f"q{int(p * 100)}": float(v) for p, v in zip(QUANTILES, q)})
    return out


def is_reselect_epoch(phase_epoch: int, every: int) -> bool:
    """Coresets are (re)selected at phase epochs 0, every, 2·every, ..."""
    return phase_epoch % every == 0
