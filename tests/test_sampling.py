"""Sampled decoding (``vlm3r.model.sampling``): each sampled token is the one ``torch.multinomial`` draws, with a
generator seeded alike, from probabilities computed here by hand from the logits, the temperature and top_p; greedy
rows stay the argmax; top_p tiny is the argmax; a row's draws do not depend on its batch; and through the tiny
model, a sampled answer is the one drawn by hand step by step from the whole prompt's logits (the pipeline and
the server pass it on: ``test_serve.py::test_sampling_as_openai_servers_do``)."""

import math

import pytest
import torch
from helpers import distinctive_model

from vlm3r.errors import InputError
from vlm3r.model.config import Vlm3rConfig
from vlm3r.model.sampling import Sampling, TokenChooser

VOCAB = 50  # the hand-drawn steps' vocabulary
VOCAB_LLM = 1000  # the tiny model's, small so that its hand-drawn answer is quick


def hand_weights(logits: list[float], temperature: float, top_p: float) -> torch.Tensor:
    """softmax(logits / T) in Python floats; zero outside the nucleus: the most probable tokens (ties: the lower
    id first), taken while the ones taken have less than top_p together."""
    scaled = [value / temperature for value in logits]
    top = max(scaled)
    exps = [math.exp(value - top) for value in scaled]
    total = sum(exps)
    probs = [value / total for value in exps]
    kept, mass = set(), 0.0
    for token in sorted(range(len(probs)), key=lambda t: (-probs[t], t)):
        if mass >= top_p:
            break
        kept.add(token)
        mass += probs[token]
    return torch.tensor([p if t in kept else 0.0 for t, p in enumerate(probs)], dtype=torch.float32)


def hand_draw(logits: torch.Tensor, sampling: Sampling, generator: torch.Generator) -> int:
    weights = hand_weights(logits.tolist(), sampling.temperature, sampling.top_p)
    return int(torch.multinomial(weights, 1, generator=generator)[0])


def step_logits(seed: int, rows: int = 1) -> torch.Tensor:
    return torch.randn(rows, VOCAB, generator=torch.Generator().manual_seed(seed)) * 3


def test_a_sampled_token_is_the_hand_drawn_one():
    """60 draws (temperatures, nuclei, seeds), two steps each: the second draw continues the row's generator."""
    drawn = []
    for temperature in (0.3, 1.0, 1.7):
        for top_p in (1.0, 0.9, 0.5, 0.05):
            for seed in range(5):
                sampling = Sampling(temperature, top_p, seed)
                first, second = step_logits(seed), step_logits(100 + seed)
                choose = TokenChooser([sampling], 1, "cpu")
                got = [int(choose(first)[0]), int(choose(second)[0])]
                generator = torch.Generator().manual_seed(seed)
                want = [hand_draw(first[0], sampling, generator), hand_draw(second[0], sampling, generator)]
                assert got == want, (temperature, top_p, seed)
                drawn += got
    assert len(set(drawn)) > 10  # the draws are not all the argmax: sampling was exercised


def test_greedy_rows_are_the_argmax_and_rows_do_not_share_draws():
    logits = step_logits(7, rows=4)
    samplings = [None, Sampling(0.0, 0.5, 3), Sampling(1.3, 0.8, 11), Sampling(0.9, 1.0, 11)]
    got = TokenChooser(samplings, 4, "cpu")(logits.clone())
    argmax = logits.argmax(dim=-1)
    assert got[:2].tolist() == argmax[:2].tolist()
    for k in (2, 3):  # each as if alone: its own generator, whatever else is in the batch
        assert int(got[k]) == hand_draw(logits[k], samplings[k], torch.Generator().manual_seed(11))
        assert int(TokenChooser([samplings[k]], 1, "cpu")(logits[k:k + 1].clone())[0]) == int(got[k])
    assert TokenChooser(None, 4, "cpu")(logits.clone()).tolist() == argmax.tolist()


def test_a_tiny_nucleus_is_the_argmax_ties_included():
    logits = step_logits(5, rows=1)
    logits[0, 3] = logits[0, 30] = logits.max() + 1  # a tie at the top: the argmax is the first, 3
    for seed in range(20):
        assert int(TokenChooser([Sampling(1.5, 1e-9, seed)], 1, "cpu")(logits.clone())[0]) == 3


@pytest.mark.parametrize("field, kwargs", [
    ("temperature", {"temperature": -0.1}), ("temperature", {"temperature": 2.01}),
    ("temperature", {"temperature": True}), ("top_p", {"top_p": 0}), ("top_p", {"top_p": 1.5}),
    ("seed", {"seed": 1 << 63}), ("seed", {"seed": 1.5}), ("seed", {"seed": True})])
def test_values_out_of_range_name_their_field(field, kwargs):
    with pytest.raises(InputError, match=f"^{field}: "):
        Sampling(**kwargs)


def test_a_sampled_answer_is_drawn_by_hand_from_the_whole_prompt():
    """The model's answer (continuing a prefilled prefix, batched with other questions, or streamed) equals a hand
    loop: each step the whole prompt and the tokens so far through the model, one draw from one generator seeded
    alike; a greedy neighbour in the batch stays the greedy answer."""
    model = distinctive_model(Vlm3rConfig.tiny(vocab_size=VOCAB_LLM))
    eos, pad, steps = 7, 0, 4
    prefix_ids, visual = [11, 12, 13], torch.randn(6, model.config.llm.hidden_size,
                                                   generator=torch.Generator().manual_seed(1)) * 0.5
    question, other = [21, 22, 23, 24], [31, 32]
    sampling = Sampling(0.8, 0.95, 1234)
    prefix = model.prefill(prefix_ids, visual)
    batched = model.generate_from_prefix(prefix, [question, other, question], steps, eos, pad,
                                         [sampling, None, sampling])
    (alone,) = model.generate_from_prefix(prefix, [question], steps, eos, pad, [sampling])
    (greedy,) = model.generate_from_prefix(prefix, [other], steps, eos, pad)
    streamed = list(model.stream_from_prefix(prefix, question, steps, eos, pad, sampling))
    assert batched[0] == batched[2] == alone == streamed
    assert batched[1] == greedy  # the greedy row is untouched by its sampled neighbours
    ids = prefix_ids + [model.config.image_token_index] + question
    generator, tokens = torch.Generator().manual_seed(1234), []
    with torch.inference_mode():
        for _ in range(steps):
            logits = model(input_ids=[ids + tokens], visuals=[visual]).logits[0, -1]
            token = hand_draw(logits, sampling, generator)
            if token == eos:
                break
            tokens.append(token)
    assert alone == tokens
    assert tokens != model.generate_from_prefix(prefix, [question], steps, eos, pad)[0]  # sampled, not greedy
