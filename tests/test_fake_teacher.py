"""The fake teacher also reviews (MAPD) and judges (critic) deterministically and consistently."""

from mirror_core.loops import critic, peer_review
from mirror_core.teachers.base import TeacherRequest
from mirror_core.teachers.fake import FakeTeacher


def _ask(t, text, purpose, gold="12"):
    req = TeacherRequest(messages=[{"role": "user", "content": text}],
                         meta={"purpose": purpose, "gold": gold, "task_type": "numeric"})
    return t.complete([req])[0].text


def test_reviews_score_right_rationales_higher():
    t = FakeTeacher("a")
    right, wrong = [], []
    for i in range(40):
        right.append(peer_review.parse_score(_ask(t, f"Solution to score:\nStep {i}.\nThe answer is 12.", "review")))
        wrong.append(peer_review.parse_score(_ask(t, f"Solution to score:\nStep {i}.\nThe answer is 13.", "review")))
    valid_r = [s for s in right if s is not None]
    valid_w = [s for s in wrong if s is not None]
    assert valid_r and valid_w and len(valid_r) < 40  # some reviews carry no valid score
    assert min(valid_r) >= 3 and max(valid_w) <= 3
    assert sum(valid_r) / len(valid_r) > 3 > sum(valid_w) / len(valid_w)


def test_judgments_agree_in_both_orders():
    t = FakeTeacher("judge")
    a, b = "Step 1: add.\nThe answer is 12.", "Step 1: guess.\nThe answer is 7."
    ab = critic.parse_choice(_ask(t, f"Q\\n\\nAnswer 1:\n{a}\n\nAnswer 2:\n{b}", "judge"))
    ba = critic.parse_choice(_ask(t, f"Q\\n\\nAnswer 1:\n{b}\n\nAnswer 2:\n{a}", "judge"))
    assert (ab, ba) == (1, 2)  # the right answer wins wherever it stands
    j = critic.combine_orders(ab, ba)
    assert j.consistent and j.winner == "a"
