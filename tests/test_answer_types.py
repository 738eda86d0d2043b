"""Answer kinds, list answers and the choice of a passage's answer (qa/reading/answer_types.py), with the real reader."""
from __future__ import annotations

import json

import pytest
from conftest import DATA, SEEDS, need_shared

from qa.reading.answer_types import asks_for_list, choose, expected_kind, fits, list_span
from qa.chunking import split_sentences
from qa.reading.decoding import Candidate
from qa.eval.metrics import exact_score

SEED_TEXT = (SEEDS / "iraq-trafficking-networks.txt").read_text(encoding="utf-8")


def _list_of(word: str, text: str = SEED_TEXT) -> str | None:
    i = text.index(word)
    sentence = next((a, b) for a, b in split_sentences(text) if a <= i < b)
    found = list_span(text, i, i + len(word), sentence)
    return text[found.start:found.end] if found else None


@pytest.mark.parametrize("question,kind", [
    ("When did Iraq pass its anti-trafficking law?", "date"),
    ("How many foreign nationals were arrested?", "number"),
    ("Who dismantled the networks?", "name"),
    ("Which ministry collaborated with the service?", "name"),
    ("Which company bought the brand?", "name"),
    ("In which city were the networks dismantled?", "place"),
    ("Where were they arrested?", "place"),
    ("What has hindered the efforts?", None),
    ("Who is the chairman of the firm?", None),  # "who is X" asks for a description as often as a name
])
def test_expected_kind(question, kind):
    assert expected_kind(question) == kind


@pytest.mark.parametrize("question,is_list", [
    ("What crimes were the networks involved in?", True),
    ("In which sectors are victims forced to work?", True),
    ("Which Nestle products performed better?", True),
    ("What are the main causes of the delay?", True),
    ("List the countries that signed.", True),
    ("Which ministry collaborated?", False),
    ("What has hindered the effort?", False),
    ("What law did Iraq pass in 2012?", False),
    ("What is the capital of France?", False),
])
def test_asks_for_list(question, is_list):
    assert asks_for_list(question) is is_list


@pytest.mark.parametrize("kind,text,ok", [
    ("name", "Warner Music Group", True), ("name", "a US-based music distributor", False),
    ("name", "the party", False), ("name", "the Ministry of Interior", True),
    ("date", "2012", True), ("date", "on Saturday", True), ("date", "the ministry", False),
    ("number", "40", True), ("number", "forty members", True), ("number", "the networks", False),
    (None, "anything at all", True),
])
def test_fits(kind, text, ok):
    assert fits(kind, text) is ok


@pytest.mark.parametrize("member,whole", [
    ("kidnapping", "kidnapping, extortion, forgery, human trafficking, and drug trafficking"),
    ("forgery", "kidnapping, extortion, forgery, human trafficking, and drug trafficking"),
    ("drug trafficking", "kidnapping, extortion, forgery, human trafficking, and drug trafficking"),
    ("corruption", "corruption, lack of resources, and ongoing security challenges"),
    ("lack of resources", "corruption, lack of resources, and ongoing security challenges"),
    ("agriculture", "construction, agriculture, and domestic service"),
    ("corrupt officials", "porous borders, corrupt officials, and the high demand for cheap labor and commercial sex"),
    ("men, women, and children", "men, women, and children"),  # "subjected to ..." after it is not a member
])
def test_a_member_gives_the_whole_list(member, whole):
    assert _list_of(member) == whole


@pytest.mark.parametrize("span", ["2012", "the Iraqi National Intelligence Service", "Saturday"])
def test_a_span_in_no_list_is_left_alone(span):
    assert _list_of(span) is None


def test_a_right_kind_candidate_of_near_score_wins():
    text = "The label was bought by a US-based music distributor, The Orchard, in 2010."
    q = "Which company bought the label?"
    wrong = Candidate(6.0, text.index("a US-based"), text.index(", The Orchard"))
    right = Candidate(5.0, text.index("The Orchard"), text.index(", in 2010"))
    score, start, end = choose(q, text, [wrong, right], split_sentences(text), penalty=3.0)
    assert text[start:end] == "The Orchard" and score == 5.0
    far = Candidate(1.0, right.start, right.end)  # a right-kind candidate far below loses; the winner pays
    score, start, end = choose(q, text, [wrong, far], split_sentences(text), penalty=3.0)
    assert text[start:end] == "a US-based music distributor" and score == 6.0 - 3.0
    # at penalty 2, a right-kind candidate 1 below wins and one 3 below does not
    assert choose(q, text, [wrong, right], split_sentences(text), penalty=2.0)[1:] == (right.start, right.end)
    lower = Candidate(3.0, right.start, right.end)
    assert choose(q, text, [wrong, lower], split_sentences(text), penalty=2.0)[1:] == (wrong.start, wrong.end)
    # the shipped penalty (chosen on the tuning set with the reader shipped 2026-12-05 from the wiki5 run) is 0: the
    # reader's best stands
    assert choose(q, text, [wrong, right], split_sentences(text))[1:] == (wrong.start, wrong.end)


def test_which_ministry_gets_the_ministry_not_the_whole_clause():
    text = ("The Iraqi National Intelligence Service, in collaboration with units from the Ministry of Interior, "
            "dismantled two networks.")
    whole = Candidate(4.0, 0, text.index(", dismantled"))
    _, start, end = choose("Which ministry collaborated with the intelligence service?", text, [whole],
                           split_sentences(text))
    assert text[start:end] == "Ministry of Interior"


def _list_questions():
    return [json.loads(line) for line in (DATA / "list_questions.jsonl").read_text().splitlines() if line.strip()]


def test_a_list_member_answer_to_a_kindless_question_grows_only_with_the_members_rule():
    text = SEED_TEXT
    i = text.index("corruption")
    q = "What has hindered the government's efforts against human trafficking?"
    one = [Candidate(5.0, i, i + len("corruption"))]
    assert choose(q, text, one, split_sentences(text), lists="plural")[1:] == (i, i + len("corruption"))
    _, start, end = choose(q, text, one, split_sentences(text), lists="members")
    assert text[start:end] == "corruption, lack of resources, and ongoing security challenges"


def test_the_attached_rule_grows_a_member_only_when_the_list_hangs_on_the_question_words():
    text = SEED_TEXT
    sents = split_sentences(text)
    i = text.index("corruption")
    one = [Candidate(5.0, i, i + len("corruption"))]
    whole = "corruption, lack of resources, and ongoing security challenges"
    grows = choose("What has hindered the government's efforts against human trafficking?", text, one, sents,
                   lists="attached")
    assert text[grows[1]:grows[2]] == whole  # "hindered by <list>"
    stays = choose("What has held back the government's work?", text, one, sents, lists="attached")
    assert text[stays[1]:stays[2]] == "corruption"  # nothing of the question next to the list
    j = text.index("children")
    kids = choose("Who has been subjected to sex trafficking and forced labor in Iraq?", text,
                  [Candidate(5.0, j, j + len("children"))], sents, lists="attached")
    assert text[kids[1]:kids[2]] == "men, women, and children"  # "<list> subjected to"
    # a question for a date or a number never grows, whatever the rule
    year = "It opened in 1990, 1995 and 2001 was when it closed."
    k = year.index("1990")
    for rule in ("attached", "members"):
        got = choose("When did it open?", year, [Candidate(5.0, k, k + 4)], split_sentences(year), lists=rule)
        assert year[got[1]:got[2]] == "1990"


def test_the_word_a_list_hangs_on_is_found_past_at_most_two_function_words():
    from qa.reading.answer_types import _nearest_content
    assert _nearest_content(["by", "hindered", "been"]) == "hindered"
    assert _nearest_content(["in", "by", "hindered"]) == "hindered"  # two skipped
    assert _nearest_content(["in", "by", "of", "hindered"]) is None  # three: too far
    assert _nearest_content([]) is None


def test_list_members_hold_no_clause_and_the_last_stops_before_its_verb():
    # the last member stops before the verb and the auxiliary in front of it
    text = "Private companies and corporations have worked to take over the postal services."
    assert text[slice(*_span(text, "Private companies"))] == "Private companies and corporations"
    # a member that runs into a clause is no member: no list
    text = "Such moves help to prevent or reduce conflict because they reduce actual or perceived inequities."
    i = text.index("prevent")
    assert list_span(text, i, i + len("prevent"), (0, len(text))) is None
    # a later comma piece split on "and" must be two whole members, not the tail of a longer piece
    text = "Ideas of the 19th century, such as those of Adam Smith returned in the 1970s and 1980s."
    i = text.index("19th")
    assert list_span(text, i, i + len("19th century"), (0, len(text))) is None
    # and the lists the finder is for are still found
    text = "Vendors sold hotels, railways, construction and a baseball team."
    i = text.index("hotels")
    found = list_span(text, i, i + len("hotels"), (0, len(text)))
    assert text[found.start:found.end] == "hotels, railways, construction and a baseball team"


def test_the_finder_keeps_names_acronyms_and_abbreviations_that_look_like_verbs_clauses_or_sentence_ends():
    # "May" is a name and "will" a noun here, not auxiliaries before the verb
    text = "Gordon Brown, David Cameron and Theresa May have served as prime minister."
    assert text[slice(*_span(text, "Gordon Brown"))] == "Gordon Brown, David Cameron and Theresa May"
    text = "The Act of Union, the Treaty and the will were contested by heirs."
    assert text[slice(*_span(text, "Act of Union"))].endswith("the Treaty and the will")
    # an acronym is no clause word; an abbreviation's full stop no sentence end
    text = "The agencies were UNICEF, WHO and UNESCO."
    assert text[slice(*_span(text, "UNICEF"))] == "UNICEF, WHO and UNESCO"
    text = "The team included Dr. Smith, Dr. Jones and Ms. Lee."
    assert text[slice(*_span(text, "Dr. Smith"))] == "Dr. Smith, Dr. Jones and Ms. Lee"
    # "when" opens a clause: no list runs into it
    text = "It opened in 1990, 1995 and 2001 was when it closed."
    i = text.index("1990")
    assert list_span(text, i, i + 4, (0, len(text))) is None
    # a list followed inside the span by auxiliaries and a participle is still the list
    text = "Men, women and children have been subjected to abuse."
    from qa.reading.answer_types import _list_around
    found = _list_around(text, 0, text.index(" to"), split_sentences(text))
    assert found is not None and text[found.start:found.end] == "Men, women and children"


def _span(text: str, member: str) -> tuple[int, int]:
    i = text.index(member)
    found = list_span(text, i, i + len(member), (0, len(text)))
    assert found is not None, member
    return found.start, found.end


def test_the_near_rule_grows_a_member_only_when_the_reader_scored_the_whole_list_near_the_best():
    text = SEED_TEXT
    i = text.index("corruption")
    whole = "corruption, lack of resources, and ongoing security challenges"
    q = "What has hindered the government's efforts against human trafficking?"
    sents = split_sentences(text)
    member = Candidate(5.0, i, i + len("corruption"))
    for list_score, gap, grows in [(3.5, 2, True), (3.0, 2, True), (2.5, 2, False), (2.5, 4, True), (None, 4, False)]:
        cands = [member] + ([Candidate(list_score, i, i + len(whole))] if list_score is not None else [])
        score, start, end = choose(q, text, cands, sents, lists=f"near:{gap}")
        assert text[start:end] == (whole if grows else "corruption"), (list_score, gap)
        assert score == 5.0  # the answer keeps the best candidate's confidence
    # a question that asks for one thing never grows, however the list is scored
    one_thing = "What is the main obstacle to the government's efforts against human trafficking?"
    _, start, end = choose(one_thing, text, [member, Candidate(4.9, i, i + len(whole))], sents, lists="near:4")
    assert text[start:end] == "corruption"
    # the gap is counted from the reader's own best candidate, before the type check moves the answer: here the
    # check picks "Alice" (7.0) over "three analysts" (8.0, not a name); the list (5.5) is within 2 of "Alice" but
    # not of the reader's best
    team = "The report was written by Alice, Bob and Carol, three analysts."
    who = "Who wrote the report?"
    cands = [Candidate(8.0, team.index("three"), team.index(".")), Candidate(7.0, team.index("Alice"), team.index(",")),
             Candidate(5.5, team.index("Alice"), team.index(", three"))]
    for gap, want in [(2, "Alice"), (4, "Alice, Bob and Carol")]:
        _, start, end = choose(who, team, cands, split_sentences(team), penalty=2.0, lists=f"near:{gap}")
        assert team[start:end] == want, gap
    # a list question grows without the gate, whatever the reader scored
    plural_q = "Which analysts wrote the report?"
    _, start, end = choose(plural_q, team, cands[1:2], split_sentences(team), lists="near:1")
    assert team[start:end] == "Alice, Bob and Carol"
    with pytest.raises(ValueError):
        choose(q, text, [member], sents, lists="near")


@pytest.mark.slow
def test_seed_list_questions_answered_whole(seed_assistant):
    """The hand-written list questions on the seed report, with the shipped rules: the misses are recorded, so
    that a change either way shows."""
    got = {}
    for q in _list_questions():
        if q["source"].startswith("seeds/"):
            ans = seed_assistant.ask(q["question"])
            got[q["id"]] = (ans.text, exact_score(ans.text or "", q["answers"]))
    missed = {k: v[0] for k, v in got.items() if v[1] < 1}
    # "In which sectors ...": the reader gives no answer (confidence 0.004); "What crimes ...": its whole list is the
    # reader's answer, at confidence 0.90, below the threshold for questions asked of a collection (0.9627,
    # training/runs/2026-12-05-ask-threshold-rule.txt), so "not found". "What has hindered ..." and "Who has been
    # subjected ..." are not list questions by their words; their one-item answers grow because the list hangs on
    # the question's words ("hindered by", "subjected to": LIST_RULE "attached")
    assert missed == {"list-seed-1": None, "list-seed-3": None}, missed
    assert seed_assistant.ask(_list_questions()[0]["question"], threshold=0.5).text == (
        "kidnapping, extortion, forgery, human trafficking, and drug trafficking")


@pytest.mark.slow
@pytest.mark.shared
def test_bbc_list_questions_answered_whole(tmp_path, encoder, span_reader):
    from qa.assistant import Assistant
    from qa.store.indexer import Indexer
    from qa.settings import Settings

    bbc = need_shared("data", "bbc-news")
    qs = [q for q in _list_questions() if q["source"].startswith("bbc-news/")]
    docs = tmp_path / "docs"
    docs.mkdir()
    for q in qs:
        src = bbc / q["source"].removeprefix("bbc-news/")
        (docs / src.parent.name).mkdir(exist_ok=True)
        (docs / src.parent.name / src.name).write_bytes(src.read_bytes())
    settings = Settings(index_dir=str(tmp_path / "index"))
    Indexer(settings, encoder).sync([docs])
    assistant = Assistant.open(tmp_path / "index", settings=settings, reader=span_reader)
    answers = {q["id"]: assistant.ask(q["question"]).text for q in qs}
    wrong = {q["id"]: answers[q["id"]] for q in qs if exact_score(answers[q["id"]] or "", q["answers"]) < 1}
    assert not wrong
