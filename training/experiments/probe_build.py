import sys, json, random, re, time, pickle
from pathlib import Path
HERE = Path(__file__).resolve().parent; ROOT = HERE.parents[1]
for p in (HERE, ROOT, ROOT / 'training'): sys.path.insert(0, str(p))
SHARED = ROOT.parent / 'shared'
from reader_data import load_examples, add_retrieved_negatives
from probe_features import extract
from qa.reading.reader import SpanReader
N = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
rng = random.Random(0)
tr, va, paras = load_examples(SHARED / 'data' / 'qa-train')
SENT = re.compile(r'(?<=[.!?])\s+')
def drop_sentence(ex):
    parts = []; pos = 0
    for m in SENT.finditer(ex.context):
        parts.append((pos, m.start())); pos = m.end()
    parts.append((pos, len(ex.context)))
    if len(parts) < 3: return None
    for a, b in parts:
        if a <= ex.answer_start < b:
            ctx = (ex.context[:a] + ex.context[b:]).strip()
            lc = ctx.lower()
            if any(g.lower() in lc for g in ex.answers): return None
            return ctx
    return None
def sample(xs, n_pos, n_real, n_ret, n_drop, seed):
    r = random.Random(seed)
    pos = [e for e in xs if e.answers]; neg = [e for e in xs if not e.answers]
    P = r.sample(pos, n_pos); R = r.sample(neg, min(n_real, len(neg)))
    ret = add_retrieved_negatives(r.sample(pos, n_ret * 2), paras, 1.0, seed)[:n_ret]
    D = []
    for e in r.sample(pos, n_drop * 3):
        c = drop_sentence(e)
        if c: D.append((e.question, c))
        if len(D) >= n_drop: break
    items = [(e.question, e.context, 1, 'pos', e.source) for e in P] + [(e.question, e.context, 0, 'real', e.source) for e in R]
    items += [(e.question, e.context, 0, 'ret', e.source) for e in ret] + [(q, c, 0, 'drop', '') for q, c in D]
    return items
train = sample(tr, N, N // 2, N // 2, N // 2, 1)
val = sample(va, N // 2, N // 4, N // 4, N // 4, 2)
sq = json.load(open(SHARED / 'data' / 'squad' / 'dev-v2.0.json'))['data']
dev = []
for art in sq:
    for p in art['paragraphs']:
        for q in p['qas']:
            dev.append((q['question'], p['context'], 0 if q.get('is_impossible') else 1, 'dev', [a['text'] for a in q['answers']]))
dev = random.Random(5).sample(dev, N)
reader = SpanReader(); reader.warm_up()
out = {}
for name, items in (('train', train), ('val', val), ('dev', dev)):
    t = time.time()
    f = extract(reader, [(i[0], i[1]) for i in items])
    f['y'] = [i[2] for i in items]; f['kind'] = [i[3] for i in items]; f['extra'] = [i[4] for i in items]
    out[name] = f
    print(name, len(items), f'{time.time()-t:.1f}s', flush=True)
pickle.dump(out, open(sys.argv[2] if len(sys.argv) > 2 else f'/tmp/feats_{N}.pkl', 'wb'))
