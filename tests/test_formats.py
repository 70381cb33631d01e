import pytest

from mirror_core import formats


def test_prompts_differ_per_task_and_carry_choices():
    ps = {t: formats.prompt(t, "Which?", ["red", "blue"], cot="Step 1.") for t in formats.TASKS}
    assert len(set(ps.values())) == 4
    assert "(B) blue" in ps["answer"]
    assert ps["verdict"].endswith(formats.VERDICT_STEM)
    assert "Step 1." in ps["critique"]


def test_cot_target_gets_a_final_answer_line_only_when_missing():
    assert formats.target("cot", cot="2+2=4", answer="4").endswith("The answer is 4.")
    t = formats.target("cot", cot="2+2=4\nThe answer is 4.", answer="4")
    assert t.count("The answer is") == 1


def test_verdict_target_and_parse_roundtrip():
    for v in formats.VERDICTS:
        assert formats.parse_verdict(formats.VERDICT_STEM + formats.target("verdict", verdict=v)) == v
    assert formats.parse_verdict("Evaluation result: the given answer is incorrect") == "wrong"
    assert formats.parse_verdict("no verdict here") is None
    with pytest.raises(ValueError):
        formats.target("verdict", verdict="maybe")


def test_unknown_task_and_missing_cot_raise():
    with pytest.raises(ValueError):
        formats.prompt("summarise", "q")
    with pytest.raises(ValueError):
        formats.prompt("verdict", "q")
