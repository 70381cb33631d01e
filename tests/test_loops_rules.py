"""Pure rules of the loops on hand-made cases: uncertainty, peer-review acceptance, critic pairing."""

from __future__ import annotations

import math

import pytest

from mirror_core.loops import critic, peer_review, uncertainty as U


# ---------------------------------------------------------------- ELAD uncertainty

def test_split_steps_lines_then_sentences():
    text = "First add 3 and 4. That gives 7!\nThen double it\n\nThe answer is 14."
    assert U.step_texts(text) == ["First add 3 and 4.", "That gives 7!", "Then double it", "The answer is 14."]
    # spans index into the original text
    for (a, b), s in zip(U.split_steps(text), U.step_texts(text)):
        assert text[a:b] == s


def test_step_entropies_mean_per_step_and_whitespace_goes_to_next_step():
    text = "ab cd.\nef"
    # tokens: "ab"(0) " cd"(2) "."(5) "\n"(6) "ef"(7)
    starts = [0, 2, 5, 6, 7]
    ent = [1.0, 2.0, 3.0, 10.0, 4.0]
    steps = U.step_entropies(text, starts, ent)
    assert steps == [pytest.approx(2.0), pytest.approx(7.0)]  # "\n" token joins the second step
    assert U.explanation_entropy(steps) == pytest.approx(4.5)
    with pytest.raises(ValueError):
        U.step_entropies(text, [0], [1.0, 2.0])


def test_every_step_counts_once_so_a_short_unsure_step_is_not_hidden():
    text = "a a a a a a a a.\nb"
    starts = list(range(0, 16, 2)) + [17]
    ent = [0.0] * 8 + [8.0]
    # token mean would be 8/9 ≈ 0.89; step mean is (0 + 8) / 2 = 4
    assert U.explanation_entropy(U.step_entropies(text, starts, ent)) == pytest.approx(4.0)


def test_disagreement():
    assert U.disagreement(["7", "7", "7"]) == 0.0
    assert U.disagreement(["7", "8", "7", "9"]) == pytest.approx(0.5)
    assert U.disagreement([None, None]) == pytest.approx(0.5)  # unreadable answers never agree
    assert U.disagreement([]) == 0.0


def test_score_combines_normalised_entropy_and_disagreement():
    v = 100
    s = U.score_question(5, [[math.log(v)], [0.0]], ["1", "2"], vocab_size=v, weight=0.5)
    assert s.entropy_norm == pytest.approx(0.5)
    assert s.disagreement == pytest.approx(0.5)
    assert s.score == pytest.approx(0.5)
    assert s.most_uncertain_sample == 0
    assert U.score_question(5, [[0.0]], ["1"], v, weight=1.0).score == 0.0
    with pytest.raises(ValueError):
        U.score_question(5, [[0.0]], ["1"], v, weight=1.5)


def test_top_b_and_seeded_random_control():
    scores = [U.QuestionScore(i, sc, 0, 0, 0) for i, sc in [(1, 0.2), (2, 0.9), (3, 0.5), (4, 0.9)]]
    assert [s.example_id for s in U.select_top(scores, 3)] == [2, 4, 3]
    assert U.select_top(scores, 0) == []
    a = U.select_random([5, 1, 9, 3, 7], 3, seed=1)
    assert a == U.select_random([9, 7, 5, 3, 1], 3, seed=1)  # order of the pool does not matter
    assert len(set(a)) == 3 and set(a) <= {1, 3, 5, 7, 9}
    assert U.select_random([1, 2], 5, seed=0) in ([1, 2], [2, 1])


def test_token_entropies_on_a_tiny_model():
    from mirror_core.students import loading

    tok = loading.load_tokenizer("tiny")
    model = loading.tiny_causal_lm(tok)
    starts, ent = U.token_entropies(model, tok, "Question: 2+2?\n", "Add them.\nThe answer is 4.")
    assert len(starts) == len(ent) > 3
    assert starts == sorted(starts) and starts[0] == 0
    # a random init is close to uniform: entropy near log V, never above it
    assert all(0 < h <= math.log(len(tok)) + 1e-4 for h in ent)


# ---------------------------------------------------------------- MAPD peer review

@pytest.mark.parametrize("text,score", [
    ("Clear and correct. Score: [4]", 4),
    ("[ 5 ]", 5),
    ("I'd say [3/5].", 3),
    ("[[2]]", 2),
    ("[Score: 1] sloppy", 1),
    ("first [2], on reflection [4]", 4),
    ("no brackets, 4 out of 5", None),
    ("[7]", None),
    ("[0]", None),
    ("[3.5]", None),
    ("", None),
    (None, None),
])
def test_parse_score(text, score):
    assert peer_review.parse_score(text) == score


def test_accept_uses_only_other_teachers_and_strict_threshold():
    d = peer_review.decide("a", {"a": 5, "b": 4, "c": 3})
    assert d.accepted and d.mean == pytest.approx(3.5) and d.n_valid == 2  # a's own 5 ignored
    d = peer_review.decide("a", {"a": 5, "b": 3, "c": 3})
    assert not d.accepted and d.mean == 3.0 and "not above 3" in d.reason  # strictly greater
    d = peer_review.decide("a", {"b": 4, "c": None})
    assert d.accepted and d.n_valid == 1 and "ignored" in d.reason
    d = peer_review.decide("a", {"b": None, "c": None})
    assert not d.accepted and d.mean is None and "no valid peer score" in d.reason
    d = peer_review.decide("a", {"a": 5})
    assert not d.accepted and "no other teacher" in d.reason
    assert peer_review.decide("a", {"b": 3}, threshold=2.5).accepted


# ---------------------------------------------------------------- critic

def test_jaccard_and_most_different_pair():
    assert critic.jaccard_distance("a b c", "A b C") == 0.0
    assert critic.jaccard_distance("a b", "c d") == 1.0
    assert critic.jaccard_distance("a b c", "b c d") == pytest.approx(0.5)
    cands = ["the cat sat", "the cat sat", "a dog ran", "the cat ran"]
    i, j, d = critic.most_different_pair(cands)
    assert (i, j) == (0, 2) and d == 1.0  # first of the tied farthest pairs
    assert critic.most_different_pair(["same", "same", "SAME"]) is None
    assert critic.most_different_pair(["one"]) is None


def test_length_band_is_symmetric():
    ten = " ".join(["w"] * 10)
    assert critic.within_band(ten, " ".join(["w"] * 12))
    assert not critic.within_band(ten, " ".join(["w"] * 13))
    assert critic.within_band(" ".join(["w"] * 12), ten)
    assert not critic.within_band(" ".join(["w"] * 13), ten)
    assert not critic.within_band("", "w")
    assert critic.within_band(ten, " ".join(["w"] * 15), band=(0.5, 2.0))
    with pytest.raises(ValueError):
        critic.within_band("a", "b", band=(1.2, 0.8))


@pytest.mark.parametrize("text,choice", [
    ("[1] it is funnier", 1), ("[[2]]", 2), ("Output 2 is better.", 2), ("Response 1 wins", 1),
    ("Both output 1 and output 2 are fine", None), ("neither", None), (None, None),
])
def test_parse_choice(text, choice):
    assert critic.parse_choice(text) == choice


def test_both_orders_must_agree():
    # a shown first and chosen (1), then b shown first and a chosen (2): consistent, a wins
    assert critic.combine_orders(1, 2) == critic.Judgment(True, "a", 1, 2)
    assert critic.combine_orders(2, 1).winner == "b"
    # position bias: always picks the first shown -> inconsistent
    j = critic.combine_orders(1, 1)
    assert not j.consistent and j.winner is None
    assert not critic.combine_orders(None, 2).consistent
