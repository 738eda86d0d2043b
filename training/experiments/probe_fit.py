import sys, pickle, numpy as np, torch, re, string, collections
N = sys.argv[1]
d = pickle.load(open(sys.argv[2] if len(sys.argv) > 2 else f'/tmp/feats_{N}.pkl', 'rb'))
def feats(f, use):
    cols = []
    m = f['score'] - f['null']
    scal = np.stack([m, f['score'], f['null'], f['pmax_s'], f['pmax_e'], np.log(f['len']), f['smax'], f['emax'], f['win_null'] - f['null']], 1)
    if 'scal' in use: cols.append(scal)
    if 'margin' in use: cols.append(m[:, None])
    if 'cls' in use: cols.append(f['cls'])
    if 'span' in use: cols.append(f['span'])
    return np.concatenate(cols, 1).astype(np.float32)
def auc(y, s):
    y = np.asarray(y); o = np.argsort(s); r = np.empty(len(s)); r[o] = np.arange(len(s))
    p = y == 1; return (r[p].sum() - p.sum() * (p.sum() - 1) / 2) / (p.sum() * (~p).sum())
def fit(X, y, wd=1e-3, epochs=300):
    mu, sd = X.mean(0), X.std(0) + 1e-6
    Xt = torch.tensor((X - mu) / sd); yt = torch.tensor(y, dtype=torch.float32)
    w = torch.zeros(X.shape[1], requires_grad=True); b = torch.zeros(1, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], max_iter=epochs, line_search_fn='strong_wolfe')
    def closure():
        opt.zero_grad(); l = torch.nn.functional.binary_cross_entropy_with_logits(Xt @ w + b, yt) + wd * (w ** 2).sum(); l.backward(); return l
    opt.step(closure)
    return lambda Z: ((torch.tensor((Z - mu) / sd) @ w + b).detach().numpy())
def norm(s):
    s = s.lower(); s = ''.join(c for c in s if c not in set(string.punctuation)); s = re.sub(r'\b(a|an|the)\b', ' ', s); return ' '.join(s.split())
def f1(p, g):
    pt, gt = norm(p).split(), norm(g).split()
    c = collections.Counter(pt) & collections.Counter(gt); ns = sum(c.values())
    if ns == 0: return 0.0
    pr, rc = ns / len(pt), ns / len(gt); return 2 * pr * rc / (pr + rc)
def dev_f1(f, s, thr):
    tot = 0
    for i in range(len(s)):
        golds = f['extra'][i]
        if s[i] > thr:
            tot += max(f1(f['text'][i], g) for g in golds) if golds else 0
        else:
            tot += 0 if golds else 1
    return 100 * tot / len(s)
def best_thr_val(f, s):
    # F1 on val: answerable gets reader F1 approx 1 if positive (use 1 for label), choose threshold maximizing accuracy
    y = np.array(f['y']); best = None
    for t in np.quantile(s, np.linspace(0.01, 0.99, 99)):
        acc = ((s > t) == (y == 1)).mean()
        if best is None or acc > best[0]: best = (acc, t)
    return best[1]
tr, va, dv = d['train'], d['val'], d['dev']
ytr = np.array(tr['y'])
print('kinds train', collections.Counter(tr['kind']))
for use in (['margin'], ['scal'], ['scal', 'cls'], ['scal', 'cls', 'span']):
    for wd in ((1e-3,) if use == ['margin'] else (1e-3, 1e-2)):
        pr = fit(feats(tr, use), ytr, wd)
        sv, sd_ = pr(feats(va, use)), pr(feats(dv, use))
        yv = np.array(va['y']); kinds = np.array(va['kind'])
        aucs = {k: round(auc(yv[(kinds == 'pos') | (kinds == k)], sv[(kinds == 'pos') | (kinds == k)]), 3) for k in ('real', 'ret', 'drop')}
        t = best_thr_val(va, sv)
        dvs = sorted(sd_)
        best_dev = max(dev_f1(dv, sd_, q) for q in np.quantile(sd_, np.linspace(0.02, 0.98, 49)))
        print(use, wd, 'val auc', round(auc(yv, sv), 3), aucs, '| dev auc', round(auc(np.array(dv['y']), sd_), 3),
              'dev F1@valthr', round(dev_f1(dv, sd_, t), 1), 'dev F1 oracle', round(best_dev, 1), 'dev no-ans frac', round((sd_ <= t).mean(), 3))
