"""How each answer token is chosen: greedy (the argmax, the model's default and the benchmarks' decoding) or sampled,
as OpenAI-compatible servers (vLLM) sample: ``softmax(logits / temperature)``, cut to the nucleus of ``top_p``,
one draw by ``torch.multinomial`` with the answer's own generator. Each sampled answer has its own generator,
seeded by its ``seed``, so the same prompt with the same seed gets the same answer whatever else is decoded in its
batch (a batch's logits equal each row's alone up to rounding, as greedy batching relies on too).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from vlm3r.errors import InputError

MAX_TEMPERATURE = 2.0  # OpenAI's range of temperature: 0 (greedy) to 2
SEED_MIN, SEED_MAX = -(1 << 63), (1 << 63) - 1  # a seed is a 64-bit signed integer (as vLLM's API takes it)


@dataclass(frozen=True)
class Sampling:
    """How one answer is decoded. ``temperature`` 0 is greedy (``top_p`` and ``seed`` then change nothing);
    above 0, tokens are drawn from ``softmax(logits / temperature)`` restricted to the most probable tokens whose
    probabilities reach ``top_p`` together (the nucleus; 1: every token), with a generator seeded by ``seed``
    (None: a fresh random seed, a different answer each time)."""

    temperature: float = 1.0
    top_p: float = 1.0
    seed: int | None = None

    def __post_init__(self):
        if isinstance(self.temperature, bool) or not 0 <= self.temperature <= MAX_TEMPERATURE:
            raise InputError(f"temperature: from 0 (greedy) to {MAX_TEMPERATURE:g}, got {self.temperature!r}")
        if isinstance(self.top_p, bool) or not 0 < self.top_p <= 1:
            raise InputError(f"top_p: above 0 and at most 1, got {self.top_p!r}")
        if self.seed is not None and (not isinstance(self.seed, int) or isinstance(self.seed, bool)
                                      or not SEED_MIN <= self.seed <= SEED_MAX):
            raise InputError(f"seed: an integer from {SEED_MIN} to {SEED_MAX}, or none, got {self.seed!r}")

    @property
    def greedy(self) -> bool:
        return self.temperature == 0

    def generator(self, device: torch.device | str) -> torch.Generator:
        """A generator of its own for one answer, on the device of the logits it samples from."""
        generator = torch.Generator(device=device)
        if self.seed is None:
            generator.seed()
        else:
            generator.manual_seed(self.seed)
        return generator


def sampling_weights(logits: torch.Tensor, temperature: float, top_p: float) -> torch.Tensor:
    """The weights one token of a row's ``logits`` [V] is drawn with: ``softmax(logits / temperature)`` in fp32,
    zero outside the nucleus (a token is in it when the tokens more probable than it, ties in vocabulary order,
    have less than ``top_p`` together: the most probable token always is). Not renormalised: ``torch.multinomial``
    normalises."""
    probs = torch.softmax(logits.float() / temperature, dim=-1)
    if top_p < 1:
        ordered, order = probs.sort(descending=True, stable=True)
        before = ordered.cumsum(-1) - ordered  # the probability of the tokens ranked above each
        probs[order[before >= top_p]] = 0
    return probs


class TokenChooser:
    """Each step's tokens of a batch: greedy rows take the argmax of their logits (exactly as without sampling),
    sampled rows draw from ``sampling_weights`` with their own generator (one draw per step, whether or not the
    row has already ended, so that a row's draws never depend on another's)."""

    def __init__(self, samplings: list[Sampling | None] | None, batch: int, device: torch.device | str):
        if samplings is not None and len(samplings) != batch:
            raise InputError(f"samplings: one per question ({batch}), got {len(samplings)}")
        self.rows = {k: (s, s.generator(device)) for k, s in enumerate(samplings or [])
                     if s is not None and not s.greedy}

    def __call__(self, logits: torch.Tensor) -> torch.Tensor:
        """``logits`` [B, V] of the step -> the chosen token ids [B]."""
        tokens = logits.argmax(dim=-1)
        for k, (sampling, generator) in self.rows.items():
            weights = sampling_weights(logits[k], sampling.temperature, sampling.top_p)
            tokens[k] = torch.multinomial(weights, 1, generator=generator)[0]
        return tokens
