"""The local teacher's outputs: a CoT stops at a next question the model invents."""

from mirror_core.teachers.local import cut_invented_question


def test_cot_is_cut_at_an_invented_next_question():
    assert cut_invented_question("3 + 4 = 7. The answer is 7.\nQuestion: Tom has 5 apples") == \
        "3 + 4 = 7. The answer is 7."
    assert cut_invented_question("So 12.\n\nQ: what is 2+2?\nA: 4") == "So 12."
    assert cut_invented_question("The question: how many? 5.") == "The question: how many? 5."
