import sys
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from qa.assistant import Assistant
from qa.eval.run import corpus_index
from qa.eval.questions import load_questions, sample
from qa.settings import Settings
from qa.eval.metrics import normalize_answer
qs = load_questions('../shared/data/squad/dev-v1.1.json')
s = corpus_index(qs, Settings(), progress=None)
qs = sample(qs, 1000, 1)
a = Assistant.open(s.index_dir, settings=s)
docs = a.store.documents
n_chunk = n_doc = n_golddoc = 0
for q in qs.questions:
    hits = a.retrieve(q.question, 5)
    golds = [g.lower() for g in q.answers]
    in_chunk = any(any(g in h.chunk.text.lower() for g in golds) for h in hits)
    in_doc = any(any(g in docs[h.chunk.doc_id].text.lower() for g in golds) for h in hits)
    n_chunk += in_chunk; n_doc += in_doc
print('answer in top5 chunk text', n_chunk / 10, '| in top5 hits full docs', n_doc / 10)
print('chunks', len(a.store), 'docs', len(docs))
