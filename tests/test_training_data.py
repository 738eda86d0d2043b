"""training/reader_data.py: the unanswerable examples the reader is trained and calibrated on."""
import sys

from conftest import ROOT

sys.path.insert(0, str(ROOT / "training"))
from reader_data import (Example, add_antonym_question_negatives, add_negated_question_negatives,  # noqa: E402
                         add_paragraph_swapped_question_negatives, add_removed_sentence_negatives,
                         add_swapped_question_negatives)

CTX = ("The Kell bridge crosses the Tamar river. It was designed by Ada Voss in 1901. "
       "Construction took six years! Its towers are \"granite.\" Traffic opened in 1907.")


def _ex(answer: str, qid: str = "q1", context: str = CTX) -> Example:
    return Example(qid, "Who designed the Kell bridge?", context, [answer], context.index(answer), answer, "src")


def test_the_answer_sentence_is_cut_and_the_rest_kept():
    (neg,) = add_removed_sentence_negatives([_ex("Ada Voss")], 1.0, seed=0)
    assert neg.answers == [] and neg.answer_start == -1 and neg.synthetic and neg.qid == "q1/cut"
    assert neg.question == "Who designed the Kell bridge?"
    assert neg.context == ("The Kell bridge crosses the Tamar river. Construction took six years! "
                           "Its towers are \"granite.\" Traffic opened in 1907.")


def test_an_answer_across_sentences_cuts_them_all():
    ex = _ex("six years! Its towers")
    (neg,) = add_removed_sentence_negatives([ex], 1.0, seed=0)
    assert "six years" not in neg.context and "towers" not in neg.context
    assert neg.context.startswith("The Kell bridge crosses") and neg.context.endswith("Traffic opened in 1907.")


def test_skipped_when_the_answer_survives_or_too_little_is_left():
    # the answer text also appears in a kept sentence (any case)
    twice = CTX + " ADA VOSS retired in 1920."
    assert add_removed_sentence_negatives([_ex("Ada Voss", context=twice)], 1.0, seed=0) == []
    # one sentence left after the cut
    short = "Ada Voss designed it. It is long."
    assert add_removed_sentence_negatives([_ex("Ada Voss", context=short)], 1.0, seed=0) == []
    unanswerable = Example("q2", "Why?", CTX, [], -1, "", "src")
    assert add_removed_sentence_negatives([unanswerable], 1.0, seed=0) == []


def test_fraction_and_seed():
    exs = [_ex("Ada Voss", qid=f"q{i}") for i in range(400)]
    assert add_removed_sentence_negatives(exs, 0.0, seed=0) == []
    some = add_removed_sentence_negatives(exs, 0.25, seed=3)
    assert 60 < len(some) < 140
    assert some == add_removed_sentence_negatives(exs, 0.25, seed=3)


OTHER = "The Hale tower stands in Orvik. Its architect was Lena Brandt."


def _asked(question: str, answer: str, context: str = CTX, qid: str = "q1") -> Example:
    return Example(qid, question, context, [answer], context.index(answer), answer, "src")


def test_a_swapped_name_is_one_the_paragraph_does_not_hold():
    exs = [_asked("Who designed the Kell bridge?", "Ada Voss"),
           _asked("Who was the architect of the Hale tower?", "Lena Brandt", OTHER, "q2")]
    swapped = add_swapped_question_negatives(exs, 1.0, seed=0)
    assert [n.qid for n in swapped] == ["q1/swap", "q2/swap"]
    first, second = swapped
    assert first.question == "Who designed the Hale bridge?" and first.context == CTX
    assert second.question == "Who was the architect of the Kell tower?"
    for neg in swapped:
        assert neg.answers == [] and neg.answer_start == -1 and neg.synthetic


def test_a_swapped_year_moves_off_every_year_of_the_paragraph():
    ex = _asked("What opened in 1907?", "Traffic")
    for seed in range(20):
        (neg,) = add_swapped_question_negatives([ex], 1.0, seed=seed)
        year = neg.question.removeprefix("What opened in ").removesuffix("?")
        assert year.isdigit() and year not in CTX and 1877 <= int(year) <= 1937


def test_nothing_to_swap_or_no_replacement_gives_no_negative():
    # no name or year of the question is in the paragraph
    assert add_swapped_question_negatives([_asked("Who designed the bridge?", "Ada Voss")], 1.0, seed=0) == []
    # the only other name of a word's length is in the paragraph too
    exs = [_asked("Who designed the Kell bridge?", "Ada Voss"), _asked("What crosses the Tamar?", "The Kell bridge")]
    assert add_swapped_question_negatives(exs, 1.0, seed=0) == []
    unanswerable = Example("q3", "Who designed the Kell bridge?", CTX, [], -1, "", "src")
    assert add_swapped_question_negatives([unanswerable], 1.0, seed=0) == []
    assert add_swapped_question_negatives([_asked("Who designed the Kell bridge?", "Ada Voss")], 0.0, seed=0) == []


def test_a_year_that_bounds_a_period_is_not_swapped():
    """"What opened after 1901?" is still answered by a later year of the paragraph: not a negative."""
    for question in ("What opened after 1901?", "What happened between 1901 and 1907?", "What stood until 1907?"):
        assert add_swapped_question_negatives([_asked(question, "Traffic")], 1.0, seed=0) == []


def test_a_name_is_not_swapped_for_a_form_of_one_the_paragraph_holds():
    normans = "The Normans settled in Normandy. Their leader Rollo swore fealty to the king."
    keep = "The Norman keep at Orvik was built by Lena Brandt."
    exs = [_asked("Who led the Normans?", "Rollo", normans), _asked("Who built the Norman keep?", "Lena Brandt", keep)]
    # "Norman" -> "Normans" (and back) would still be answered by the paragraph: no negative
    assert add_swapped_question_negatives(exs, 1.0, seed=0) == []


def test_a_paragraph_swap_asks_about_another_name_of_the_paragraph_not_in_the_answer_sentence():
    ctx = ("The Kell bridge crosses the Tamar river near Orvik. It was designed by Ada Voss in 1901 for the Kell "
           "council. The Hale tower was finished by Lena Brandt in 1907.")
    ex = _asked("Who designed the Kell bridge in 1901?", "Ada Voss", ctx)
    seen = set()
    for seed in range(30):
        for neg in add_paragraph_swapped_question_negatives([ex], 1.0, seed=seed):
            assert neg.qid == "q1/pswap" and neg.answers == [] and neg.answer_start == -1 and neg.synthetic
            assert neg.context == ctx
            seen.add(neg.question)
    # "Kell" and "1901" are in the answer's sentence; each is swapped for a name or year of the paragraph that the
    # answer's sentence lacks: not "Ada Voss" or "Kell" (in it), not "Tamar" or "Orvik" (within 40 characters of
    # "Kell": they may name the same thing), not "The Hale" (a sentence's first word, capitalised anyway)
    assert seen == {"Who designed the Lena Brandt bridge in 1901?", "Who designed the Kell bridge in 1907?"}


def test_a_paragraph_swap_skips_names_that_may_name_the_same_thing():
    ctx = ("The prize went to America (the United States) in 1950, after a long contest held in the hall. "
           "Later America hosted the games in 1960.")
    ex = _asked("Which country won the prize in 1950?", "America", ctx)
    # "America" is not in the question; the year swaps, to 1960 only (the one other year of the paragraph)
    assert {n.question for seed in range(10) for n in add_paragraph_swapped_question_negatives([ex], 1.0, seed)} == {
        "Which country won the prize in 1960?"}
    # a name with "the" in it shares no word with another such name for "the" alone
    from reader_data import _same_name
    far = "The Kell stands in the north of the county, by the river. " * 2 + "The Hale stands in the south."
    assert not _same_name("The Kell", "The Hale", far)
    assert _same_name("Bank of England", "Bank of Wales", far)  # a content word in common
    ctx = "Proudhon wrote the book in Paris. Proudhon's friends met there each year, and later in Lyon."
    ex = _asked("Where did Proudhon write the book?", "Paris", ctx)
    # "Proudhon's" shares its word with "Proudhon"; "Lyon" is left: the only swap
    assert {n.question for n in add_paragraph_swapped_question_negatives([ex], 1.0, seed=0)} == {
        "Where did Lyon write the book?"}
    ctx = "The MDCM degree is given at McGill. In full, Medicinae Doctorem is its Latin name."
    ex = _asked("Which school gives the MDCM degree?", "McGill", ctx)
    # "Medicinae Doctorem" has the initials MD, with which "MDCM" starts: may be its name, never swapped in
    assert {n.question for seed in range(20) for n in add_paragraph_swapped_question_negatives([ex], 1.0, seed)} == {
        "Which school gives the Latin degree?"}
    assert add_paragraph_swapped_question_negatives([ex], 0.0, seed=0) == []


def test_a_paragraph_swap_is_not_made_when_another_sentence_states_the_same_fact_of_the_new_term():
    ctx = ("In 1901, Ada Voss built the long Kell bridge across the wide Tamar river. "
           "In 1907, Ada Voss built the Hale bridge across the Exe.")
    ex = _asked("What did Ada Voss build in 1901?", "the long Kell bridge", ctx)
    # "1907" would ask "What did Ada Voss build in 1907?": its own sentence answers it
    assert add_paragraph_swapped_question_negatives([ex], 1.0, seed=0) == []


def test_an_antonym_negative_turns_a_word_the_paragraph_uses_into_one_it_lacks():
    ctx = "Oslo is the largest city in Norway. Its harbour opened before the war."
    ex = _asked("What is the largest city in Norway?", "Oslo", ctx)
    (neg,) = add_antonym_question_negatives([ex], 1.0, seed=0)
    assert neg.question == "What is the smallest city in Norway?" and neg.context == ctx
    assert neg.qid == "q1/ant" and neg.answers == [] and neg.answer_start == -1 and neg.synthetic
    # the case of the first letter is kept
    (cap,) = add_antonym_question_negatives([_asked("Largest city of Norway?", "Oslo", ctx)], 1.0, seed=0)
    assert cap.question == "Smallest city of Norway?"


def test_no_antonym_negative_when_the_paragraph_holds_the_opposite_or_not_the_word():
    both = "Oslo is the largest city in Norway; Bergen is not the smallest."
    assert add_antonym_question_negatives([_asked("What is the largest city in Norway?", "Oslo", both)],
                                          1.0, seed=0) == []
    # a form of the opposite counts ("smaller" shares "small" with "smallest")
    form = "Oslo is the largest city in Norway, and smaller towns lie around it."
    assert add_antonym_question_negatives([_asked("What is the largest city in Norway?", "Oslo", form)],
                                          1.0, seed=0) == []
    # the question's word is not the paragraph's: the question is not anchored to it
    plain = "Oslo is the capital of Norway."
    assert add_antonym_question_negatives([_asked("What is the largest city in Norway?", "Oslo", plain)],
                                          1.0, seed=0) == []
    # a word inside another word is not turned ("Eastwood" holds "east"; the paragraph uses "east" too)
    assert add_antonym_question_negatives([_asked("Who met Eastwood?", "Oslo", "Oslo met Eastwood in the east.")],
                                          1.0, seed=0) == []
    # nor part of a hyphenated word, nor the second term of a comparison
    hyphen = "Oslo holds the largest-scale archive and the largest harbour; more than most cities."
    for q in ("Which city holds the largest-scale archive?", "Which city has more than most cities?"):
        assert add_antonym_question_negatives([_asked(q, "Oslo", hyphen)], 1.0, seed=0) == [], q
    assert add_antonym_question_negatives([_asked("What is the largest city in Norway?", "Oslo",
                                                  "Oslo is the largest city in Norway.")], 0.0, seed=0) == []


def test_every_antonym_has_one_opposite_that_leads_back():
    from reader_data import _ANTONYM
    assert all(_ANTONYM[_ANTONYM[w]] == w for w in _ANTONYM)


def test_a_negated_question_puts_not_after_its_copula():
    ctx = "Ada Voss was the first mayor of Kell. She served until 1907."
    (neg,) = add_negated_question_negatives([_asked("Who was the first mayor of Kell?", "Ada Voss", ctx)], 1.0, 0)
    assert neg.question == "Who was not the first mayor of Kell?" and neg.context == ctx
    assert neg.qid == "q1/not" and neg.answers == [] and neg.answer_start == -1 and neg.synthetic
    (which,) = add_negated_question_negatives([_asked("Which Kell official was the first mayor?", "Ada Voss", ctx)],
                                              1.0, 0)
    assert which.question == "Which Kell official was not the first mayor?"
    (bare,) = add_negated_question_negatives([_asked("Which was the first mayor of Kell?", "Ada Voss", ctx)], 1.0, 0)
    assert bare.question == "Which was not the first mayor of Kell?"


def test_no_negated_question_where_negation_could_answer_it_or_would_not_read():
    first = "Ada Voss was the first mayor of Kell"
    for ctx in (f"{first}, not Lena Brandt.", f"{first}; Brandt wasn't.", f"{first}; Brandt failed to win.",
                f"{first}; Brandt cannot have been."):
        assert add_negated_question_negatives([_asked("Who was the first mayor of Kell?", "Ada Voss", ctx)],
                                              1.0, 0) == []
    ctx = "Ada Voss was the first mayor of Kell in 1901."
    for q in ("Who was not the first mayor of Kell?",  # negative already
              "When was Ada Voss the first mayor of Kell?",  # not a wh-subject: "When was not Ada..." is not English
              "Who became the first mayor of Kell?",  # no copula
              "Who was it founded by?"):  # a pronoun after the copula: "Who was not it..." is not English
        assert add_negated_question_negatives([_asked(q, "Ada Voss", ctx)], 1.0, 0) == [], q
    assert add_negated_question_negatives([_asked("Who was the first mayor of Kell?", "Ada Voss", ctx)], 0.0, 0) == []
