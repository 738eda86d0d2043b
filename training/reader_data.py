"""Training data for the span reader: SQuAD-format files -> examples -> tokenised windows.

Torch-free, and of the package it uses only ``qa.reading.answer_types``' patterns (plain Python), so it runs on a
bare GPU machine.
"""
from __future__ import annotations

import hashlib
import json
import lzma
import math
import random
import re
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

from qa.reading.answer_types import ENTITY, YEAR

# Files whose own split is a validation split; everything else is split by article.
VALIDATION_FILES = ("subjqa_dev", "fairytaleqa_explicit_val")
VAL_ARTICLE_PERCENT = 8
_WORD = re.compile(r"\w+", re.UNICODE)
_STOP = frozenset(
    "the a an of to in and or is was are were be been for on at by with from as that this it its what which who "
    "whom whose when where why how did do does has have had not no can could would should will than then there".split()
)


@dataclass
class Example:
    qid: str
    question: str
    context: str
    answers: list[str]  # all gold texts; [] = unanswerable
    answer_start: int  # char offset of the training answer, -1 when unanswerable
    answer_text: str
    source: str  # file stem
    synthetic: bool = False


# the id suffix each negative generator appends: the same question on another passage (the most similar paragraph,
# the paragraph with the answer's sentences cut out), or another question on the same passage (swapped, antonym,
# negated, a name or year swapped for another of the same paragraph)
OTHER_PASSAGE_SUFFIXES = ("/neg", "/cut")
OTHER_QUESTION_SUFFIXES = ("/swap", "/ant", "/not", "/pswap")


def question_of(qid: str) -> str:
    """The id of the question a negative was made from (the id itself for a question)."""
    for suf in OTHER_PASSAGE_SUFFIXES + OTHER_QUESTION_SUFFIXES:
        if qid.endswith(suf):
            return qid[: -len(suf)]
    return qid


def _open(path: Path):
    if path.suffix == ".xz":
        return lzma.open(path, "rt", encoding="utf-8")
    return open(path, encoding="utf-8")


def _stem(path: Path) -> str:
    name = path.name
    for suf in (".xz", ".json", ".squad2", ".squad"):
        if name.endswith(suf):
            name = name[: -len(suf)]
    for suf in (".json", ".squad2", ".squad"):
        if name.endswith(suf):
            name = name[: -len(suf)]
    return name


def _is_val(stem: str, title: str) -> bool:
    """Held out by article (``title``; for one-article files such as Reddit's, by paragraph)."""
    if stem in VALIDATION_FILES:
        return True
    if stem.startswith(("subjqa_", "fairytaleqa_")):
        return False  # these have their own validation files
    h = int(hashlib.md5(f"{stem}/{title}".encode()).hexdigest(), 16)
    return h % 100 < VAL_ARTICLE_PERCENT


def _pick_answer(answers: list[dict]) -> dict:
    """The most common annotation; ties go to the shortest (SQuADShifts has 3+ annotators)."""
    counts = Counter(a["text"] for a in answers)
    best = max(counts.items(), key=lambda kv: (kv[1], -len(kv[0])))[0]
    return next(a for a in answers if a["text"] == best)


def _words(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.lower()) if w not in _STOP}


def load_examples(data_dir: Path) -> tuple[list[Example], list[Example], dict[str, list[list[str]]]]:
    """Returns (train, val, paragraphs) where paragraphs[stem] lists articles' paragraph texts (for negatives)."""
    train: list[Example] = []
    val: list[Example] = []
    paragraphs: dict[str, list[list[str]]] = {}
    files = sorted(p for p in data_dir.iterdir() if p.name.endswith((".json", ".json.xz")))
    if not files:
        raise FileNotFoundError(f"no SQuAD-format .json or .json.xz files in {data_dir}")
    for path in files:
        stem = _stem(path)
        with _open(path) as f:
            data = json.load(f)["data"]
        arts: list[list[str]] = []
        for article in data:
            title = str(article.get("title", ""))
            ctxs = []
            for pi, para in enumerate(article["paragraphs"]):
                target = val if _is_val(stem, title if len(data) >= 20 else f"{title}/{pi}") else train
                ctx = para["context"]
                ctxs.append(ctx)
                for qa in para["qas"]:
                    golds = [a for a in qa.get("answers", []) if a.get("text")]
                    qid = f"{stem}/{qa['id']}"
                    if qa.get("is_impossible") or not golds:
                        target.append(Example(qid, qa["question"], ctx, [], -1, "", stem))
                        continue
                    a = _pick_answer(golds)
                    start = int(a["answer_start"])
                    if ctx[start : start + len(a["text"])] != a["text"]:
                        start = ctx.find(a["text"])
                        if start < 0:
                            continue
                    target.append(
                        Example(qid, qa["question"], ctx, [g["text"] for g in golds], start, a["text"], stem)
                    )
            if ctxs:
                arts.append(ctxs)
        paragraphs[stem] = arts
    return train, val, paragraphs


def add_retrieved_negatives(
    examples: list[Example], paragraphs: dict[str, list[list[str]]], fraction: float, seed: int
) -> list[Example]:
    """Pair answerable questions with the most similar paragraph that lacks every gold answer.

    This is what an open-corpus reader meets most: a retrieved passage on the same topic without the answer.
    Candidates come from the same article (or, for one-paragraph articles, from other articles of the file);
    similarity is idf-weighted word overlap.
    """
    rng = random.Random(seed)
    ctx_article: dict[str, tuple[str, int]] = {}
    df: Counter[str] = Counter()
    n_docs = 0
    for stem, arts in paragraphs.items():
        for ai, ctxs in enumerate(arts):
            for c in ctxs:
                ctx_article.setdefault(c, (stem, ai))
                df.update(_words(c))
                n_docs += 1
    idf = {w: math.log(1 + n_docs / (1 + n)) for w, n in df.items()}
    words_cache: dict[str, set[str]] = {}

    def words(t: str) -> set[str]:
        got = words_cache.get(t)
        if got is None:
            got = words_cache[t] = _words(t)
        return got

    out: list[Example] = []
    for ex in examples:
        if not ex.answers or rng.random() >= fraction:
            continue
        stem, ai = ctx_article[ex.context]
        arts = paragraphs[stem]
        cands = [c for c in arts[ai] if c != ex.context]
        if len(cands) < 3:
            for _ in range(20):
                other = arts[rng.randrange(len(arts))]
                cands.append(other[rng.randrange(len(other))])
        if len(cands) > 60:
            cands = rng.sample(cands, 60)
        qw = words(ex.question)
        best, best_score = None, 0.0
        low_answers = [a.lower() for a in ex.answers]
        for c in cands:
            if c == ex.context:
                continue
            score = sum(idf.get(w, 0.0) for w in qw & words(c))
            if score > best_score:
                lc = c.lower()
                if any(a in lc for a in low_answers):
                    continue
                best, best_score = c, score
        if best is not None:
            out.append(Example(ex.qid + "/neg", ex.question, best, [], -1, "", ex.source, synthetic=True))
    return out


_SENTENCE_END = re.compile(r"[.!?][\"')\]]*(?=\s)")  # . ! ? and closing quotes or brackets, before a space


def _sentence_bounds(context: str) -> list[tuple[int, int]]:
    """(start, end) of each sentence of ``context``, covering it whole."""
    bounds, pos = [], 0
    for m in _SENTENCE_END.finditer(context):
        bounds.append((pos, m.end()))
        pos = m.end()
    bounds.append((pos, len(context)))
    return bounds


def add_removed_sentence_negatives(examples: list[Example], fraction: float, seed: int) -> list[Example]:
    """The question on its own paragraph with the sentence(s) holding the answer cut out.

    The nearest thing to SQuAD 2.0's unanswerable questions that can be made without writing questions: the
    passage is on the very topic, names the same entities and keeps plausible answers of the right type, but the
    fact asked for is gone. Kept only when at least two sentences remain and no gold answer text (any case) does.
    """
    rng = random.Random(seed)
    out: list[Example] = []
    for ex in examples:
        if not ex.answers or ex.answer_start < 0 or rng.random() >= fraction:
            continue
        bounds = _sentence_bounds(ex.context)
        a0, a1 = ex.answer_start, ex.answer_start + len(ex.answer_text)
        kept = [(s, e) for s, e in bounds if e <= a0 or s >= a1]  # drop every sentence the answer overlaps
        if len(kept) < 2 or len(kept) == len(bounds):
            continue
        ctx = " ".join(ex.context[s:e].strip() for s, e in kept).strip()
        low = ctx.lower()
        if any(a.lower() in low for a in ex.answers):
            continue
        out.append(Example(ex.qid + "/cut", ex.question, ctx, [], -1, "", ex.source, synthetic=True))
    return out


_YEAR = re.compile(rf"\b{YEAR}\b")
# a year after these bounds a period ("after 1783", "between 1750 and 1783"): another year can still be answered
_RELATIVE_YEAR = re.compile(r"\b(?:before|after|since|by|until|till|between|from|to|through|prior to|as of|"
                            r"and|or|[-–])\s*$", re.IGNORECASE)
_QUESTION_WORDS = frozenset("what which who whom whose when where why how in on at the a an of".split())


def _swappable(question: str, context: str) -> list[tuple[int, int, str]]:
    """(start, end, kind) of the question's names and years that its paragraph holds, in the project's one entity
    pattern (``qa.reading.answer_types.ENTITY``); the question's first word is never one (it is capitalised anyway)."""
    found = [(m.start(), m.end(), "year") for m in _YEAR.finditer(question)
             if m.group() in context and not _RELATIVE_YEAR.search(question[: m.start()])]
    for m in ENTITY.finditer(question):
        text = m.group()
        if m.start() == 0 or text.lower() in _QUESTION_WORDS or _YEAR.fullmatch(text) or len(text) < 3:
            continue
        if text in context:
            found.append((m.start(), m.end(), "name"))
    return found


def _mentions(low_context: str, term: str) -> bool:
    """Whether the paragraph (lower-cased) holds ``term`` or a form of it ("Norman" / "Normans"): the whole term, or
    a word of five letters or more whose first five a word of the paragraph starts with."""
    if term.lower() in low_context:
        return True
    words = set(_WORD.findall(low_context))
    return any(len(w) >= 5 and any(x.startswith(w[:5]) for x in words) for w in _WORD.findall(term.lower()))


def add_swapped_question_negatives(examples: list[Example], fraction: float, seed: int) -> list[Example]:
    """The question with one of its names or years swapped for another that its paragraph does not hold, on the
    same paragraph: the fact asked for is not there, though every other word of the question still matches.

    SQuAD 2.0's commonest kind of unanswerable question ("entity swap"), made without writing questions. A year moves
    by 1-30 years; a name is replaced by a name of as many words from another question of the set. Kept only when
    the new term is nowhere in the paragraph (any case), so the label "no answer" holds.
    """
    rng = random.Random(seed)
    spots_of = [_swappable(ex.question, ex.context) for ex in examples]
    names: dict[int, list[str]] = defaultdict(list)  # word count -> names seen in the set's questions
    for ex, spots in zip(examples, spots_of):
        for s, e, kind in spots:
            if kind == "name":
                names[len(ex.question[s:e].split())].append(ex.question[s:e])
    out: list[Example] = []
    for ex, spots in zip(examples, spots_of):
        if not ex.answers or rng.random() >= fraction:
            continue
        if not spots:
            continue
        s, e, kind = rng.choice(spots)
        low = ex.context.lower()
        for _ in range(10):  # a few draws for a term the paragraph does not hold
            if kind == "year":
                new = str(int(ex.question[s:e]) + rng.choice([-1, 1]) * rng.randint(1, 30))
            else:
                pool = names[len(ex.question[s:e].split())]
                new = rng.choice(pool) if pool else ""
            if new and not _mentions(low, new) and new != ex.question[s:e]:
                break
        else:
            continue
        question = ex.question[:s] + new + ex.question[e:]
        out.append(Example(ex.qid + "/swap", question, ex.context, [], -1, "", ex.source, synthetic=True))
    return out


def _sentences_around(context: str, a0: int, a1: int) -> tuple[int, int]:
    """The start and end of the sentence(s) of ``context`` that ``context[a0:a1]`` overlaps."""
    hit = [(s, e) for s, e in _sentence_bounds(context) if s < a1 and e > a0] or [(0, len(context))]
    return hit[0][0], hit[-1][1]


def _paragraph_terms(context: str, kind: str) -> list[str]:
    """The paragraph's names (``ENTITY``, not only at a sentence's start, where any word is capitalised) or years."""
    if kind == "year":
        return list(dict.fromkeys(m.group() for m in _YEAR.finditer(context)))
    inside = [m for m in ENTITY.finditer(context) if m.start() > 0
              and not re.search(r"[.!?][\"')\]]*\s+$|^\s*$", context[max(0, m.start() - 4):m.start()])]
    return list(dict.fromkeys(m.group() for m in inside if len(m.group()) >= 3
                              and m.group().lower() not in _QUESTION_WORDS and not _YEAR.fullmatch(m.group())))


def _same_name(old: str, new: str, context: str) -> bool:
    """Whether ``new`` may name what ``old`` names, so that swapping them leaves the question answerable: a word
    (or its first five letters) in common ("Proudhon" / "Proudhon's"), one the other's initials ("MDCM" / "Medicinae
    Doctorem"), or the two within 40 characters of each other in the paragraph ("America (the United States)")."""
    stems = lambda t: {w[:5] for w in _WORD.findall(t.lower()) if w not in _STOP}  # noqa: E731
    if stems(old) & stems(new):
        return True
    initials = lambda t: "".join(w[0] for w in _WORD.findall(t)).upper()  # noqa: E731
    for a, b in ((old, new), (new, old)):
        if a.isupper() and len(b.split()) > 1 and (a.startswith(initials(b)) or initials(b).startswith(a)):
            return True
    near = re.compile(re.escape(old) + r".{0,40}" + re.escape(new) + "|" + re.escape(new) + r".{0,40}"
                      + re.escape(old), re.DOTALL)
    return bool(near.search(context))


def _asked_elsewhere(rest: str, new: str, context: str, share: float = 0.6) -> bool:
    """Whether a sentence of ``context`` that holds ``new`` also holds ``share`` or more of the content words of
    ``rest`` (the question without the swapped term): it may answer the swapped question."""
    words = {w for w in _WORD.findall(rest.lower()) if w not in _STOP}
    if not words:
        return False
    for a, b in _sentence_bounds(context):
        sentence = context[a:b].lower()
        if new.lower() in sentence and len(words & set(_WORD.findall(sentence))) >= share * len(words):
            return True
    return False


def add_paragraph_swapped_question_negatives(examples: list[Example], fraction: float, seed: int) -> list[Example]:
    """The question with one of its names or years swapped for ANOTHER name or year of the same paragraph, one the
    answer's sentence does not hold: every word of the new question is in the paragraph, but what it asks about the
    new name is not. The harder form of SQuAD 2.0's "entity swap" (``add_swapped_question_negatives`` brings in a
    term the paragraph lacks, which a reader can learn to spot by that word alone).

    Only a name or year that the answer's own sentence holds is swapped, for one of as many words (one more or
    fewer for a name) that shares no word with it and that neither the answer's sentence nor the question holds;
    and not when a sentence that holds the new term also holds most (60%) of the question's other words, which may
    state the same fact of it ("In 1907, Ada Voss built the Hale bridge" for "What did Ada Voss build in 1907?").
    """
    rng = random.Random(seed)
    out: list[Example] = []
    for ex in examples:
        if not ex.answers or ex.answer_start < 0 or rng.random() >= fraction:
            continue
        s0, s1 = _sentences_around(ex.context, ex.answer_start, ex.answer_start + len(ex.answer_text))
        sentence, q_low = ex.context[s0:s1].lower(), ex.question.lower()
        options = []
        for s, e, kind in _swappable(ex.question, ex.context):
            old = ex.question[s:e]
            if old.lower() not in sentence:
                continue
            for new in _paragraph_terms(ex.context, kind):
                low = new.lower()
                if (low in sentence or low in q_low or _same_name(old, new, ex.context)
                        or abs(len(new.split()) - len(old.split())) > (1 if kind == "name" else 0)):
                    continue
                options.append((s, e, new))
        options = [(s, e, new) for s, e, new in options
                   if not _asked_elsewhere(ex.question[:s] + ex.question[e:], new, ex.context)]
        if not options:
            continue
        s, e, new = rng.choice(options)
        question = ex.question[:s] + new + ex.question[e:]
        out.append(Example(ex.qid + "/pswap", question, ex.context, [], -1, "", ex.source, synthetic=True))
    return out


# superlatives and opposites whose swap asks for another fact that a paragraph rarely implies without the word.
# Left out: first/last and before/after (a narrative's order answers them without the word) and converse or
# comparative pairs (won/lost, bought/sold, larger/smaller: "X beat Y", "X is larger than Y" answer both sides).
_ANTONYM_PAIRS = (
    "largest smallest", "highest lowest", "longest shortest", "oldest newest", "earliest latest", "most least",
    "maximum minimum", "increase decrease", "increased decreased", "north south", "east west", "northern southern",
    "eastern western", "upper lower", "inside outside", "major minor", "strongest weakest", "best worst",
    "private public", "legal illegal", "positive negative", "accepted rejected", "allowed banned",
    "success failure", "successful unsuccessful", "richest poorest", "fastest slowest", "heaviest lightest",
    "deepest shallowest", "internal external", "domestic foreign", "ancient modern",
)
_ANTONYM: dict[str, str] = {}
for _pair in _ANTONYM_PAIRS:
    _a, _b = _pair.split()
    _ANTONYM[_a], _ANTONYM[_b] = _b, _a
# a whole word, not part of a hyphenated one ("first-order"), nor a comparison's second term ("more than most")
_ANTONYM_WORD = re.compile(r"(?<![-\w])(?<!than )(" + "|".join(sorted(_ANTONYM, key=len, reverse=True))
                           + r")(?![-\w])", re.IGNORECASE)


def add_antonym_question_negatives(examples: list[Example], fraction: float, seed: int) -> list[Example]:
    """The question with one word turned into its opposite ("largest" -> "smallest", "north" -> "south"), on the
    same paragraph: SQuAD 2.0's second commonest kind of unanswerable question ("antonym").

    Only a word the paragraph itself uses is turned (so the question still matches the passage word for word but
    one), and only into an opposite the paragraph does not hold in any form (``_mentions``), so the label "no
    answer" holds. One word a question; the case of its first letter is kept.
    """
    rng = random.Random(seed)
    out: list[Example] = []
    for ex in examples:
        if not ex.answers or rng.random() >= fraction:
            continue
        low = ex.context.lower()
        words = set(_WORD.findall(low))
        spots = [m for m in _ANTONYM_WORD.finditer(ex.question) if m.group().lower() in words
                 and not _mentions(low, _ANTONYM[m.group().lower()])]
        if not spots:
            continue
        m = rng.choice(spots)
        new = _ANTONYM[m.group().lower()]
        if m.group()[0].isupper():
            new = new[0].upper() + new[1:]
        question = ex.question[: m.start()] + new + ex.question[m.end():]
        out.append(Example(ex.qid + "/ant", question, ex.context, [], -1, "", ex.source, synthetic=True))
    return out


# "Who was ...", "What is ...", "Which company were ...": a wh-subject and a copula, where "not" can follow the copula
_COPULA_QUESTION = re.compile(r"^((?:who|what|which(?:\s+\w+){0,2})\s+(?:is|was|are|were))\s+"
                              r"(?!(?:not|it|he|she|they|we|you|i|this|that|these|those|there)\b|n't\b)",
                              re.IGNORECASE)
_NEGATION = re.compile(r"\b(?:not|no|never|none|nothing|nobody|neither|nor|without|except|unlike|instead|rather|"
                       r"other than|cannot|unable|lacks?|lacking|lacked|fail(?:s|ed|ing|ure)?|non)\b"
                       r"|n['’]t\b", re.IGNORECASE)


def add_negated_question_negatives(examples: list[Example], fraction: float, seed: int) -> list[Example]:
    """The question negated after its copula ("Who was the first mayor?" -> "Who was not the first mayor?"), on
    the same paragraph: SQuAD 2.0's "negation" kind of unanswerable question.

    Only questions that open with a wh-subject and a copula (so "not" after the copula reads as English), that are
    not negative already, and whose paragraph holds no negation at all (no "not", "never", "except", "other than"...),
    so that nothing in it can answer the negated question.
    """
    rng = random.Random(seed)
    out: list[Example] = []
    for ex in examples:
        if not ex.answers or rng.random() >= fraction:
            continue
        m = _COPULA_QUESTION.match(ex.question)
        if not m or _NEGATION.search(ex.question) or _NEGATION.search(ex.context):
            continue
        question = ex.question[: m.end(1)] + " not" + ex.question[m.end(1):]
        out.append(Example(ex.qid + "/not", question, ex.context, [], -1, "", ex.source, synthetic=True))
    return out


def answer_tokens(ex: Example, seq: list, offsets: list) -> tuple[int, int]:
    """The window's first and last token of ``ex``'s answer, or (0, 0) (CLS) when the window does not hold it whole.
    ``seq``: the window's sequence ids (1: context); ``offsets``: its tokens' character offsets."""
    ctx_start = seq.index(1)
    ctx_end = len(seq) - 1 - seq[::-1].index(1)
    if ex.answer_start < 0:
        return 0, 0
    a0, a1 = ex.answer_start, ex.answer_start + len(ex.answer_text)
    if not (offsets[ctx_start][0] <= a0 and offsets[ctx_end][1] >= a1):
        return 0, 0
    s_tok = ctx_start
    while s_tok <= ctx_end and offsets[s_tok][1] <= a0:
        s_tok += 1
    e_tok = ctx_end
    while e_tok >= ctx_start and offsets[e_tok][0] >= a1:
        e_tok -= 1
    return (0, 0) if s_tok > e_tok else (s_tok, e_tok)


def tokenize_windows(tokenizer, examples: list[Example], max_len: int, stride: int, train: bool, seed: int = 0,
                     max_neg_windows: int = 2, base: int = 0) -> dict:
    """Question + context windows. For training, label each window with the answer's token span or 0 (CLS).

    Returns plain lists: input_ids, token_type_ids, start, end, example index, and (for eval) offsets.
    Long contexts give many answer-less windows; training keeps at most ``max_neg_windows`` of them per example.
    """
    rng = random.Random(seed)
    out: dict[str, list] = defaultdict(list)
    batch = 512
    for b0 in range(0, len(examples), batch):
        exs = examples[b0 : b0 + batch]
        enc = tokenizer(
            [e.question.strip()[:1000] for e in exs],
            [e.context for e in exs],
            truncation="only_second",
            max_length=max_len,
            stride=stride,
            return_overflowing_tokens=True,
            return_offsets_mapping=True,
            padding=False,
        )
        per_example: dict[int, list[tuple]] = defaultdict(list)
        for w, ex_local in enumerate(enc["overflow_to_sample_mapping"]):
            ex = exs[ex_local]
            seq = enc.sequence_ids(w)
            offsets = enc["offset_mapping"][w]
            s_tok, e_tok = answer_tokens(ex, seq, offsets)
            ctx_offsets = None if train else [o if seq[i] == 1 else (-1, -1) for i, o in enumerate(offsets)]
            per_example[ex_local].append(
                (enc["input_ids"][w], enc["token_type_ids"][w], s_tok, e_tok, base + b0 + ex_local, ctx_offsets)
            )
        for ex_local, wins in per_example.items():
            if train:
                pos = [w for w in wins if w[2] > 0]
                neg = [w for w in wins if w[2] == 0]
                if len(neg) > max_neg_windows:
                    neg = rng.sample(neg, max_neg_windows)
                wins = pos + neg
            for ids, tt, s, e, ei, offs in wins:
                out["input_ids"].append(ids)
                out["token_type_ids"].append(tt)
                out["start"].append(s)
                out["end"].append(e)
                out["example"].append(ei)
                if not train:
                    out["offsets"].append(offs)
    return dict(out)


def tokenize_windows_parallel(tokenizer, examples: list[Example], max_len: int, stride: int, train: bool,
                              seed: int = 0, workers: int = 1) -> dict:
    """``tokenize_windows`` over shards in forked worker processes (the per-window work is Python-bound)."""
    if workers <= 1 or len(examples) < 2000:
        return tokenize_windows(tokenizer, examples, max_len, stride, train, seed)
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    size = math.ceil(len(examples) / workers)
    shards = [(examples[i : i + size], i) for i in range(0, len(examples), size)]
    with ProcessPoolExecutor(len(shards), mp_context=mp.get_context("fork")) as pool:
        futs = [pool.submit(tokenize_windows, tokenizer, sh, max_len, stride, train, seed + k, 2, base)
                for k, (sh, base) in enumerate(shards)]
        parts = [f.result() for f in futs]
    out: dict[str, list] = defaultdict(list)
    for part in parts:
        for key, vals in part.items():
            out[key].extend(vals)
    return dict(out)
