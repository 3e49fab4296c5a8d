#!/usr/bin/env python3
"""The bundled character-level language model `charlm`: corpus, baseline, training.

Used by tools/train_bundled.py (`/usr/bin/python3 tools/train_bundled.py charlm`);
run on its own it prints the corpus statistics and the n-gram baselines only:

    /usr/bin/python3 tools/charlm.py            # corpus + n-gram baselines, ~1 min

Corpus: the Python source files at the top level of the Python 3.11 standard
library as Debian's libpython3.11-stdlib / libpython3.11-minimal packages
install them (/usr/lib/python3.11/*.py), under the PSF License Agreement
(/usr/lib/python3.11/LICENSE.txt, /usr/share/doc/libpython3.11-stdlib/copyright).
The four top-level files that debian/copyright lists under other licences
(asynchat.py, asyncore.py, tarfile.py, turtle.py) are left out. Files are
taken in sorted order; every tenth (index 9, 19, ...) is the validation split,
the rest train. Each split is the concatenation of its files, one continuous
stream of characters.

Alphabet: "\\n" and the 95 printable ASCII characters " " to "~", then
"<unk>" for any other character (tab, non-ASCII, ...): 97 units, in that
order, for the one-hot input and the softmax output alike. config.json
declares them as input_names/output_names (docs/MODEL_FORMAT.md, "Text
models").

Metric: bits per character (bpc), the mean of -log2 p(next character) over
the validation stream, every character but the first predicted from all the
characters before it (the model from a zero state at the stream's start, as
a new session would).

Baseline: interpolated Kneser-Ney n-gram models (Chen & Goodman 1998, one
discount per order, D = n1 / (n1 + 2 n2)) over the same alphabet, counted on
the training stream, in numpy.
"""

import hashlib
import math
import os
import sys
import time

import numpy as np

STDLIB = "/usr/lib/python3.11"
# Files debian/copyright lists under licences other than the PSF's.
EXCLUDED = ("asynchat.py", "asyncore.py", "tarfile.py", "turtle.py")
UNK = "<unk>"
ALPHABET = ["\n"] + [chr(c) for c in range(32, 127)]
NAMES = ALPHABET + [UNK]
V = len(NAMES)
_INDEX = {c: i for i, c in enumerate(ALPHABET)}

# What the split held when the numbers in docs/MODELS.md were made
# (libpython3.11-stdlib / libpython3.11-minimal 3.11.2-6+deb12u6): the sha256
# of each split's UTF-8 text. Another package version gives other numbers.
EXPECTED_SHA256 = {
    "train": None,
    "val": None,
}


def corpus_files():
    """The corpus files, sorted, as (name, path)."""
    names = sorted(f for f in os.listdir(STDLIB) if f.endswith(".py") and f not in EXCLUDED)
    return [(n, os.path.join(STDLIB, n)) for n in names]


def load_corpus():
    """-> {"train": text, "val": text, "train_files": [...], "val_files": [...]}."""
    files = corpus_files()
    if not files:
        sys.exit(f"no Python files in {STDLIB}: install libpython3.11-stdlib")
    parts = {"train": [], "val": []}
    for i, (name, path) in enumerate(files):
        with open(path, encoding="utf-8") as f:
            parts["val" if i % 10 == 9 else "train"].append((name, f.read()))
    out = {}
    for split, items in parts.items():
        out[split] = "".join(t for _, t in items)
        out[split + "_files"] = [n for n, _ in items]
        digest = hashlib.sha256(out[split].encode("utf-8")).hexdigest()
        out[split + "_sha256"] = digest
        if EXPECTED_SHA256[split] and digest != EXPECTED_SHA256[split]:
            print(f"WARNING: the {split} split differs from the one the documented numbers were "
                  f"made from (sha256 {digest}); another python3.11 package version?",
                  file=sys.stderr)
    return out


def encode(text):
    """Text -> int64 array of alphabet indices (unknown characters -> <unk>)."""
    unk = V - 1
    return np.array([_INDEX.get(c, unk) for c in text], dtype=np.int64)


def one_hot(ids):
    """int array (T,) -> float32 (T, V)."""
    x = np.zeros((len(ids), V), dtype=np.float32)
    x[np.arange(len(ids)), ids] = 1.0
    return x


# --------------------------------------------------------------------------
# Interpolated Kneser-Ney n-gram baseline
# --------------------------------------------------------------------------

def _rows(ids, k, ends):
    """The k-grams ending at positions `ends` as a (len(ends), k) uint8 matrix."""
    m = np.empty((len(ends), k), dtype=np.uint8)
    for j in range(k):
        m[:, j] = ids[ends - k + 1 + j]
    return m


def _keys(rows):
    """uint8 rows -> one sortable key per row (raw bytes: lexicographic order)."""
    rows = np.ascontiguousarray(rows)
    return rows.view(np.dtype((np.void, rows.shape[1]))).ravel()


class KneserNey:
    """Interpolated Kneser-Ney of order `order` (context order - 1 characters).

    The highest order uses counts; lower orders use continuation counts
    N1+(. g), the number of distinct characters seen before the gram g; the
    unigram level interpolates with the uniform distribution over the
    alphabet, so every character has a probability > 0. Grams are keyed by
    their bytes (one byte per character), so any order works.
    """

    def __init__(self, train_ids, order):
        assert V <= 256
        self.order = order
        ids = np.asarray(train_ids)
        # per k = 1..order: (gram keys, counts, context keys, totals, types, D)
        self.levels = []
        for k in range(1, order + 1):
            if k == order:
                rows = _rows(ids, k, np.arange(k - 1, len(ids)))
                keys, first, counts = np.unique(_keys(rows), return_index=True, return_counts=True)
                grams = rows[first]
            else:
                longer = _rows(ids, k + 1, np.arange(k, len(ids)))
                _, first = np.unique(_keys(longer), return_index=True)
                suffix = longer[first, 1:]  # distinct (k+1)-grams -> their last k characters
                keys, first, counts = np.unique(_keys(suffix), return_index=True,
                                                return_counts=True)
                grams = suffix[first]
            if k == 1:
                ctx = None
                totals = np.array([counts.sum()])
                types = np.array([len(counts)])
            else:
                ctx, inverse = np.unique(_keys(grams[:, :-1]), return_inverse=True)
                totals = np.bincount(inverse, weights=counts).astype(np.int64)
                types = np.bincount(inverse).astype(np.int64)
            n1, n2 = np.sum(counts == 1), np.sum(counts == 2)
            d = n1 / (n1 + 2 * n2) if n1 + n2 > 0 else 0.5
            self.levels.append((keys, counts, ctx, totals, types, d))

    @staticmethod
    def _lookup(sorted_keys, values, queries):
        if len(queries) == 0:
            return np.zeros(0, dtype=values.dtype)
        pos = np.minimum(np.searchsorted(sorted_keys, queries), len(sorted_keys) - 1)
        return np.where(sorted_keys[pos] == queries, values[pos], 0)

    def prob(self, ids):
        """p(ids[i] | ids[:i]) for i = 1..len-1 (context capped at order-1)."""
        ids = np.asarray(ids)
        n = len(ids)
        positions = np.arange(1, n)
        p = np.full(n - 1, 1.0 / V)
        for k, (keys, counts, ctx, totals, types, d) in enumerate(self.levels, start=1):
            usable = positions >= k - 1  # enough characters before for k-1 of context
            idx = positions[usable]
            rows = _rows(ids, k, idx)
            c = np.zeros(n - 1)
            tot = np.zeros(n - 1)
            typ = np.zeros(n - 1)
            c[usable] = self._lookup(keys, counts, _keys(rows))
            if ctx is None:
                tot[usable], typ[usable] = totals[0], types[0]
            else:
                q = _keys(rows[:, :-1])
                tot[usable] = self._lookup(ctx, totals, q)
                typ[usable] = self._lookup(ctx, types, q)
            seen = usable & (tot > 0)
            with np.errstate(divide="ignore", invalid="ignore"):
                mixed = np.maximum(c - d, 0) / tot + d * typ / tot * p
            p = np.where(seen, mixed, p)
        return p


def bpc_of(p):
    return float(-np.mean(np.log2(p)))


# Orders of the n-gram baselines: short ones, and long ones that can copy
# whole repeated lines of the corpus.
NGRAM_ORDERS = (2, 3, 4, 5, 6, 8, 12, 16, 24, 32)
_NGRAM_PROBS = {}  # (order, len(train), sha of val) -> (per-character probabilities, grams stored)


def ngram_probs(train_ids, val_ids, n, with_size=False):
    key = (n, len(train_ids), hashlib.sha256(val_ids.tobytes()).hexdigest())
    if key not in _NGRAM_PROBS:
        kn = KneserNey(train_ids, n)
        _NGRAM_PROBS[key] = (kn.prob(val_ids), sum(len(level[0]) for level in kn.levels))
    return _NGRAM_PROBS[key] if with_size else _NGRAM_PROBS[key][0]


def ngram_baselines(train_ids, val_ids, orders=NGRAM_ORDERS, sizes=None):
    """{order: validation bpc} of interpolated Kneser-Ney n-grams; `sizes`, if
    given, gets {order: distinct grams stored, all orders 1..n}."""
    out = {}
    for n in orders:
        t0 = time.time()
        p, size = ngram_probs(train_ids, val_ids, n, with_size=True)
        out[n] = bpc_of(p)
        if sizes is not None:
            sizes[n] = size
        print(f"  {n}-gram (interpolated Kneser-Ney): validation {out[n]:.3f} bpc "
              f"({time.time() - t0:.0f} s)", flush=True)
    return out


def unigram_bpc(train_ids, val_ids):
    """Validation bpc of the training split's character frequencies (add-one)."""
    f = np.bincount(train_ids, minlength=V) + 1.0
    return bpc_of((f / f.sum())[val_ids[1:]])


# --------------------------------------------------------------------------
# The LSTM
# --------------------------------------------------------------------------

# Picked before training, from the time budget (one thread, under an hour),
# not by a search on the validation split.
SETTINGS = dict(layers=1, hidden=256, streams=32, bptt=128, epochs=4, lr=4e-3,
                clip=1.0, seed=3)
DESCRIPTION = ("Character-level language model of Python source code: input one character "
               "per step (one-hot over newline, the 95 printable ASCII characters and <unk>), "
               "output the probability of each next character. LSTM 1x256, trained on the "
               "Python 3.11 standard library.")
# The demo text shipped in models/charlm/ (a validation file, so the model
# has not seen it): the start of genericpath.py, cut at a line end.
SAMPLE_FILE, SAMPLE_CHARS = "genericpath.py", 1000


def train_lstm(train_ids, s=SETTINGS, log=print):
    """Train nn.LSTM(V, hidden, layers) + nn.Linear(hidden, V) to predict the
    next character (cross-entropy on the softmax head's logits).

    The training stream is cut into `streams` contiguous parallel streams
    (the batch); each update runs `bptt` characters of every stream and
    carries the state on to the next update (truncated backpropagation
    through time), so the state sees the text as a session would, far beyond
    `bptt` characters. Each epoch starts from a zero state. Adam with a
    cosine decay of the learning rate to 0, gradient-norm clipping.
    """
    import torch
    import torch.nn.functional as F
    from torch import nn

    torch.manual_seed(s["seed"])
    rnn = nn.LSTM(V, s["hidden"], s["layers"])
    head = nn.Linear(s["hidden"], V)
    params = list(rnn.parameters()) + list(head.parameters())
    B, T = s["streams"], s["bptt"]
    per_stream = (len(train_ids) - 1) // B
    updates_per_epoch = per_stream // T
    total = updates_per_epoch * s["epochs"]
    opt = torch.optim.Adam(params, lr=s["lr"])
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, total)
    ids = torch.from_numpy(train_ids[:B * per_stream + 1])
    # column b is stream b: x[t, b] = ids[b * per_stream + t]
    x_all = torch.stack([ids[b * per_stream:(b + 1) * per_stream] for b in range(B)], 1)
    y_all = torch.stack([ids[b * per_stream + 1:(b + 1) * per_stream + 1] for b in range(B)], 1)
    log(f"  {total} updates ({s['epochs']} epochs of {updates_per_epoch}) of {B} x {T} characters")
    step, running = 0, 0.0
    t0 = time.time()
    for epoch in range(s["epochs"]):
        state = None
        for u in range(updates_per_epoch):
            x = F.one_hot(x_all[u * T:(u + 1) * T], V).float()
            y = y_all[u * T:(u + 1) * T]
            out, state = rnn(x, state)
            state = tuple(h.detach() for h in state)
            loss = F.cross_entropy(head(out).reshape(-1, V), y.reshape(-1))
            opt.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(params, s["clip"])
            opt.step()
            sched.step()
            step += 1
            running += loss.item()
            if step % 200 == 0:
                log(f"  update {step:5d}/{total}  train {running / 200 / math.log(2):.3f} bpc  "
                    f"({time.time() - t0:.0f} s)")
                running = 0.0
    return rnn.eval(), head.eval()


def model_bpc(model, ids, chunk=8192):
    """Validation bpc of a ServedModel (softmax outputs) run over `ids` from a
    zero state, in chunks that carry the state: p(ids[i] | ids[:i]), i >= 1."""
    import torch
    total, count = 0.0, 0
    h = c = None
    with torch.no_grad():
        for start in range(0, len(ids) - 1, chunk):
            x = torch.from_numpy(one_hot(ids[start:min(start + chunk, len(ids) - 1)]))
            y, h, c = model(x, h, c)
            target = ids[start + 1:start + 1 + len(x)]
            p = y.double().numpy()[np.arange(len(x)), target]
            total += float(-np.sum(np.log2(p)))
            count += len(x)
    return total / count


def train_and_export(version_dir, log=print):
    """Train with SETTINGS and export to `version_dir` (F32, softmax head).
    Returns (training seconds wall, training seconds of CPU)."""
    import lstmserve_export as E
    c = load_corpus()
    train_ids = encode(c["train"])
    wall, cpu = time.time(), time.process_time()
    rnn, head = train_lstm(train_ids, log=log)
    wall, cpu = time.time() - wall, time.process_time() - cpu
    E.export_model(version_dir, rnn, head, "softmax", None, "F32", description=DESCRIPTION,
                   input_names=NAMES, output_names=NAMES)
    return wall, cpu


def sample_text():
    """The demo text: the first lines of SAMPLE_FILE, up to SAMPLE_CHARS characters."""
    with open(os.path.join(STDLIB, SAMPLE_FILE), encoding="utf-8") as f:
        text = f.read()
    return text[:text.rindex("\n", 0, SAMPLE_CHARS) + 1]


def write_sample(model_dir):
    """models/charlm/sample.txt and data.csv (its one-hot rows, one per character)."""
    text = sample_text()
    with open(os.path.join(model_dir, "sample.txt"), "w", encoding="utf-8") as f:
        f.write(text)
    with open(os.path.join(model_dir, "data.csv"), "w") as f:
        for i in encode(text):
            row = ["0"] * V
            row[i] = "1"
            f.write(",".join(row) + "\n")
    return text


# --------------------------------------------------------------------------
# What the model does with its memory (for the README and docs/MODELS.md)
# --------------------------------------------------------------------------

COMPARE_ORDERS = (5, 32)  # the n-grams the per-kind comparison uses
ANALYSIS_CHARS = 100_000  # the cell-state analysis runs over the first so many val characters
DEMO = "def f(x):\n"


def text_features(text):
    """Per character of `text` (Python source): whether a string literal is
    open after it, the bracket depth after it (from Python's own tokenizer,
    so brackets inside strings and comments do not count), and the
    indentation (leading spaces) of its line so far. A text cut in the middle
    of a statement is tokenized up to where the tokenizer gives up."""
    import io
    import tokenize
    starts = np.concatenate([[0], np.cumsum([len(l) for l in text.splitlines(True)])])
    s = np.zeros(len(text), dtype=bool)
    d = np.zeros(len(text) + 1, dtype=np.int64)  # +1 / -1 at bracket positions
    try:
        for tok in tokenize.generate_tokens(io.StringIO(text).readline):
            a = starts[tok.start[0] - 1] + tok.start[1]
            b = starts[tok.end[0] - 1] + tok.end[1]
            if tok.type == tokenize.STRING:
                s[a:b - 1] = True  # open after each character but the closing quote
            elif tok.type == tokenize.OP and tok.string in "([{":
                d[a] += 1
            elif tok.type == tokenize.OP and tok.string in ")]}":
                d[a] -= 1
    except (tokenize.TokenError, IndentationError, SyntaxError):
        pass  # an unterminated string or bracket at the end of a cut text
    ind = np.zeros(len(text), dtype=np.int64)
    col_spaces, leading = 0, True
    for i, ch in enumerate(text):
        if ch == "\n":
            col_spaces, leading = 0, True
        elif leading and ch == " ":
            col_spaces += 1
        else:
            leading = False
        ind[i] = col_spaces
    return {"string open": s.astype(np.float64),
            "bracket depth": np.cumsum(d[:-1]).astype(np.float64),
            "indentation": ind.astype(np.float64)}


def syntax_features(files):
    """text_features of the concatenated `files` (names in STDLIB), each file
    tokenized on its own."""
    parts = []
    for name in files:
        with open(os.path.join(STDLIB, name), encoding="utf-8") as f:
            parts.append(text_features(f.read()))
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def cell_states(model, ids):
    """(h, c) of the (one-layer) LSTM after each character of ids, from a zero state."""
    import torch
    rnn = model.rnn
    H = rnn.hidden_size
    with torch.no_grad():
        h, _ = rnn(torch.from_numpy(one_hot(ids))[:, None])
    h = h[:, 0].double().numpy()
    w_ih = rnn.weight_ih_l0.detach().double().numpy()
    w_hh = rnn.weight_hh_l0.detach().double().numpy()
    b = (rnn.bias_ih_l0 + rnn.bias_hh_l0).detach().double().numpy()
    h_prev = np.vstack([np.zeros((1, H)), h[:-1]])
    pre = w_ih[:, ids].T + h_prev @ w_hh.T + b       # one-hot input: a column of w_ih
    sig = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    i, f, g = sig(pre[:, :H]), sig(pre[:, H:2 * H]), np.tanh(pre[:, 2 * H:3 * H])
    c = np.zeros_like(h)
    prev = np.zeros(H)
    for t in range(len(ids)):
        prev = f[t] * prev + i[t] * g[t]
        c[t] = prev
    return h, c


def correlations(states, features):
    """{feature: (unit, r)} of the unit whose value correlates most (|r|) with it."""
    z = (states - states.mean(0)) / (states.std(0) + 1e-12)
    out = {}
    for name, v in features.items():
        fz = (v - v.mean()) / v.std()
        r = z.T @ fz / len(fz)
        u = int(np.argmax(np.abs(r)))
        out[name] = (u, float(r[u]))
    return out


def top_k_lines(model, text, k=3):
    """What `lstm-client stream --model charlm --text` prints for `text`,
    computed by PyTorch (the same format as client/cli/text.cc)."""
    import torch
    ids = encode(text)
    with torch.no_grad():
        y, _, _ = model(torch.from_numpy(one_hot(ids)))
    y = y.double().numpy()

    def show(ch):
        esc = {"\n": "\\n", "\t": "\\t", "\r": "\\r", "\\": "\\\\", "'": "\\'"}
        return ch if ch == UNK else "'" + esc.get(ch, ch) + "'"
    lines = []
    for t, ch in enumerate(text):
        order = sorted(range(V), key=lambda u: (-y[t, u], u))[:k]
        lines.append("\t".join([show(ch)] + [f"{show(NAMES[u])} {y[t, u]:.3f}" for u in order]))
    return lines


def examples(model):
    """Numbers and pictures showing where the memory pays off:

    - bits per character by kind of character, model against the
      COMPARE_ORDERS-grams: closing brackets, the spaces that indent a line,
      characters inside string literals, all;
    - the cell (and hidden) units that best track an open string, the
      bracket depth and the indentation over the first ANALYSIS_CHARS
      validation characters, and docs/img/charlm_cell.png for the best one;
    - the demo output for DEMO.
    """
    corpus = load_corpus()
    ids = encode(corpus["val"])
    feats = syntax_features(corpus["val_files"])
    train_ids = encode(corpus["train"])
    p_ngram = {n: ngram_probs(train_ids, ids, n) for n in COMPARE_ORDERS}
    import torch
    p_model = np.empty(len(ids) - 1)
    h = c = None
    with torch.no_grad():
        for start in range(0, len(ids) - 1, 8192):
            x = torch.from_numpy(one_hot(ids[start:min(start + 8192, len(ids) - 1)]))
            y, h, c = model(x, h, c)
            p_model[start:start + len(x)] = y.double().numpy()[np.arange(len(x)),
                                                               ids[start + 1:start + 1 + len(x)]]
    target = np.array(NAMES)[ids[1:]]
    prev_indent = feats["indentation"][:-1]
    prev_char = np.array(NAMES)[ids[:-1]]
    # a space that continues a line's indentation: the characters before it on
    # its line are all spaces (the line's indentation so far equals its length)
    col = np.zeros(len(ids), dtype=np.int64)
    for i in range(1, len(ids)):
        col[i] = 0 if NAMES[ids[i - 1]] == "\n" else col[i - 1] + 1
    kinds = {
        "closing brackets `)`, `]`, `}`": np.isin(target, [")", "]", "}"]),
        "indentation (spaces at the start of a line)": (target == " ") & (prev_indent == col[1:])
        & ((prev_char == "\n") | (prev_char == " ")),
        "inside string literals": feats["string open"][:-1] > 0,
        "all characters": np.ones(len(target), dtype=bool),
    }
    by_kind = {k: dict(count=int(m.sum()), model=float(-np.mean(np.log2(p_model[m]))),
                       ngram={str(n): float(-np.mean(np.log2(p[m]))) for n, p in p_ngram.items()})
               for k, m in kinds.items()}

    n = ANALYSIS_CHARS
    hs, cs = cell_states(model, ids[:n])
    sub = {k: v[:n] for k, v in feats.items()}
    units = {"c": correlations(cs, sub), "h": correlations(hs, sub)}
    picture(cs, ids, units["c"])
    return dict(by_kind=by_kind, units=units, demo=top_k_lines(model, DEMO),
                analysis_chars=n)


PICTURE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                       "docs", "img", "charlm_cell.png")


def picture(cs, ids, best):
    """docs/img/charlm_cell.png: a stretch of validation text with each
    character shaded by the cell state of the unit that best tracks an open
    string (top) and the bracket depth (bottom)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    text = "".join(NAMES[i] if NAMES[i] != UNK else "?" for i in ids)
    # A stretch with strings and nested brackets: the window of 12 lines
    # with the most of both, from the first 20000 characters.
    lines = text[:20000].split("\n")
    starts = np.concatenate([[0], np.cumsum([len(l) + 1 for l in lines])])
    def score(j):
        seg = "\n".join(lines[j:j + 12])
        return min(seg.count("'") + seg.count('"'), 2 * seg.count("("))
    j = max(range(len(lines) - 12), key=score)
    a, b = starts[j], starts[j + 12] - 1
    fig, axes = plt.subplots(2, 1, figsize=(11, 7.5))
    for ax, (feature, (unit, r)) in zip(axes, [(k, best[k]) for k in ("string open", "bracket depth")]):
        v = cs[a:b, unit]
        lo, hi = np.percentile(cs[:, unit], [1, 99])
        cmap = plt.get_cmap("coolwarm")
        ax.set_xlim(0, 90)
        ax.set_ylim(-12.5, 0.5)
        ax.axis("off")
        row, col = 0, 0
        for t, ch in enumerate(text[a:b]):
            color = cmap(float(np.clip((v[t] - lo) / max(hi - lo, 1e-9), 0, 1)))
            if ch == "\n":
                ax.add_patch(plt.Rectangle((col, -row - 0.5), 1, 1, color=color))
                row, col = row + 1, 0
                continue
            ax.add_patch(plt.Rectangle((col, -row - 0.5), 1, 1, color=color))
            ax.text(col + 0.5, -row, ch, ha="center", va="center", family="monospace", fontsize=8)
            col += 1
        ax.set_title(f"cell state c[{unit}] (correlation with \"{feature}\": r = {r:+.2f}); "
                     f"blue low, red high", fontsize=10)
    fig.suptitle("charlm: two LSTM cells over unseen Python source "
                 "(tools/train_bundled.py charlm)", fontsize=11)
    fig.tight_layout()
    os.makedirs(os.path.dirname(PICTURE), exist_ok=True)
    fig.savefig(PICTURE, dpi=110)
    plt.close(fig)


def _minutes(seconds):
    return f"{seconds / 60:.1f} min" if seconds >= 60 else f"{seconds:.0f} s"


def _by_kind_orders(m):
    """The n-gram orders the per-kind table compares with, and a function
    (kind's entry, order) -> bpc. metrics.json holds either one order
    (by_kind[...]["ngram"] a number, the order in "compare_order") or
    several (by_kind[...]["ngram"] = {order: bpc}, COMPARE_ORDERS)."""
    first = next(iter(m["by_kind"].values()))["ngram"]
    if isinstance(first, dict):
        return list(first), lambda v, n: v["ngram"][n]
    return [str(m["compare_order"])], lambda v, n: v["ngram"]


def _tables(m):
    ng = m["ngram_bpc"]
    best = min(ng, key=ng.get)
    bpc = ["| predictor | validation bits per character |", "|---|---|",
           f"| **this model** (LSTM {m['settings']['layers']}x{m['settings']['hidden']}) | "
           f"**{m['val_bpc']:.3f}** |"]
    bpc += [f"| {k}-gram, interpolated Kneser-Ney{' (best order)' if k == best else ''} | "
            f"{v:.3f} |" for k, v in ng.items()]
    bpc.append(f"| character frequencies (unigram) | {m['unigram_bpc']:.3f} |")
    orders, bpc_of_kind = _by_kind_orders(m)
    kinds = ["| next character | count | this model | " + " | ".join(f"{n}-gram" for n in orders)
             + " |", "|---|---|---|" + "---|" * len(orders)]
    kinds += [f"| {k} | {v['count']} | {v['model']:.3f} | "
              + " | ".join(f"{bpc_of_kind(v, n):.3f}" for n in orders) + " |"
              for k, v in m["by_kind"].items()]
    cells = ["| feature | best cell unit (r) | best hidden unit (r) |", "|---|---|---|"]
    for f in m["units"]["c"]:
        (cu, cr), (hu, hr) = m["units"]["c"][f], m["units"]["h"][f]
        cells.append(f"| {f} | c[{cu}] ({cr:+.2f}) | h[{hu}] ({hr:+.2f}) |")
    return "\n".join(bpc), "\n".join(kinds), "\n".join(cells)


def _verdict(m):
    ng = {int(k): v for k, v in m["ngram_bpc"].items()}
    best = min(ng, key=ng.get)
    size = f"{m['size_bytes'] / 1e6:.1f} MB of weights"
    if m["val_bpc"] < ng[best]:
        return (f"The LSTM beats every n-gram: {m['val_bpc']:.3f} bits per character against "
                f"{ng[best]:.3f} for the best ({best}-gram), with {size} where the {best}-gram "
                f"needs its whole table of counts.")
    beaten = sorted(k for k in ng if ng[k] > m["val_bpc"])
    text = (f"**The LSTM does not beat the best n-gram**: {m['val_bpc']:.3f} bits per character "
            f"against {ng[best]:.3f} for the {best}-gram")
    if beaten:
        shown = 5 if 5 in beaten else beaten[-1]
        text += (f". It beats the n-grams up to order {beaten[-1]} (the {shown}-gram by "
                 f"{ng[shown] - m['val_bpc']:.2f} bits per character), not the longer ones")
    table = m.get("ngram_grams", {}).get(str(best))
    if table is None:
        return text + f", with {size} where the {best}-gram needs its whole table of counts."
    return (text + f", which copy the many strings the standard library repeats from "
            f"a table of {table / 1e6:.0f} million distinct n-grams (orders 1-{best}) where "
            f"the LSTM has {size}.")


def models_md_section(m):
    bpc, kinds, cells = _tables(m)
    s = m["settings"]
    return f"""## charlm

A character-level language model of Python source: one character per step,
one-hot over an alphabet of {V} units (newline, the 95 printable ASCII
characters and `<unk>` for anything else, declared as the model's
`input_names`/`output_names`, see
[MODEL_FORMAT.md](MODEL_FORMAT.md#text-models)), and a softmax over the same
alphabet for the next character. Trained on the Python 3.11 standard library
as Debian ships it (`/usr/lib/python3.11/*.py` from libpython3.11-stdlib,
PSF License): {len(m['train_files'])} files ({m['train_chars']:,} characters) train,
{len(m['val_files'])} others ({m['val_chars']:,} characters) validate. LSTM
{s['layers']}x{s['hidden']}, {m['size_bytes'] / 1e6:.1f} MB of F32 weights.

```sh
echo "def f(x):" | build/lstm-client stream --model charlm --text
```

{bpc}

{_verdict(m)} Where the context matters most, the gap is widest:

{kinds}

Some cells track the syntax (correlation over the first {m['analysis_chars']:,}
validation characters, Python's own tokenizer giving the truth):

{cells}

![charlm cells over Python source](img/charlm_cell.png)

Good for: the `--text` demo, a model with a large input and output (97 each)
for benchmarks, and a real example of what the recurrent state carries: an
open string, the bracket depth, the indentation.

"""


def readme(m):
    bpc, kinds, cells = _tables(m)
    s = m["settings"]
    demo = "\n".join(m["demo"])
    return f"""# charlm

{m['description']}

- Cell: LSTM, {s['layers']} layer, hidden size {s['hidden']}, then a linear head with a
  softmax activation to {V} outputs; {m['size_bytes'] / 1e6:.1f} MB of F32 weights.
- Input ({V} values per step, one step per character): one-hot over the
  alphabet in `input_names`: `"\\n"`, the 95 printable ASCII characters `" "`
  to `"~"` in code order, then `"<unk>"`, the unit for every other
  character (tab, form feed, non-ASCII). See docs/MODEL_FORMAT.md, "Text
  models".
- Output ({V} values per step): the probability of each character of the
  same alphabet (`output_names`) being the next one.
- Start each text from a zero state (a new session) and stream it one
  character per step.

```sh
echo "def f(x):" | build/lstm-client stream --model charlm --text
```

prints, for each character read, the three most likely next characters:

```
{demo}
```

`lstm-model` takes the one-hot rows: `data.csv` is `sample.txt` encoded, one
row per character.

```sh
build/lstm-model run models/charlm < models/charlm/data.csv   # 97 probabilities per line
```

## Data

The Python source files at the top level of the Python 3.11 standard library
(`/usr/lib/python3.11/*.py`), from Debian's **libpython3.11-stdlib** and
**libpython3.11-minimal** (3.11.2-6+deb12u6), under the PSF License Agreement
(`LICENSE-PSF.txt` here, a copy of `/usr/lib/python3.11/LICENSE.txt`; see
also `/usr/share/doc/libpython3.11-stdlib/copyright`). The four top-level
files that the package's copyright file lists under other licences
(`asynchat.py`, `asyncore.py`, `tarfile.py`, `turtle.py`) are left out.
Files in sorted order; every tenth (index 9, 19, ...) validates:
{', '.join(m['val_files'])}; the other {len(m['train_files'])} train. sha256 of the
concatenated UTF-8 text: train `{m['train_sha256']}`, validation
`{m['val_sha256']}` (`tools/charlm.py` warns if the installed package gives
other text). `sample.txt` is the start of `{SAMPLE_FILE}` (a validation file),
Copyright (c) Python Software Foundation, redistributed under the PSF License.

## Training

`tools/train_bundled.py charlm` (`tools/charlm.py`; PyTorch, deterministic:
seed {s['seed']}, one thread). The {m['train_chars']:,} training characters are cut
into {s['streams']} contiguous streams trained side by side, {s['bptt']} characters per
update, the state carried from one update to the next (truncated
backpropagation through time); {s['epochs']} epochs. Adam, learning rate
{s['lr']} with cosine decay to 0, gradient-norm clipping at {s['clip']}; loss:
cross-entropy of the next character. The settings were fixed from the time
budget before training, not tuned on the validation files. Training took
{_minutes(m['train_cpu_seconds'])} of CPU on one thread ({_minutes(m['train_wall_seconds'])} wall clock on a
2-core VM shared with other builds).

## Validation

Bits per character (mean -log2 p of the next character) over the
{m['val_chars']:,} validation characters, read as one stream from a zero
state, every character after the first predicted from all those before it.
The n-gram baselines are interpolated Kneser-Ney (one discount per order,
n1 / (n1 + 2 n2)) counted on the same training characters, over the same
alphabet, in numpy (`tools/charlm.py`).

{bpc}

{_verdict(m)}

By kind of next character (same validation stream):

{kinds}

Cells that track the syntax (correlation with features from Python's
tokenizer over the first {m['analysis_chars']:,} validation characters):

{cells}

![charlm cells over Python source](../../docs/img/charlm_cell.png)

## Retrain

```sh
/usr/bin/python3 tools/train_bundled.py charlm   # torch + numpy (+ matplotlib for the picture)
/usr/bin/python3 tools/make_golden.py bundled_charlm
```
"""


def main():
    c = load_corpus()
    tr, va = encode(c["train"]), encode(c["val"])
    print(f"train: {len(c['train_files'])} files, {len(tr)} characters, sha256 {c['train_sha256']}")
    print(f"val:   {len(c['val_files'])} files, {len(va)} characters, sha256 {c['val_sha256']}")
    print(f"<unk>: {np.mean(tr == V - 1):.2e} of train, {np.mean(va == V - 1):.2e} of val")
    print(f"unigram: {unigram_bpc(tr, va):.3f} bpc")
    ngram_baselines(tr, va)


if __name__ == "__main__":
    main()
