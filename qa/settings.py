"""One settings object, validated at construction and passed explicitly."""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field, replace

from qa.chunking import ChunkSettings
from qa.errors import BadSetting
from qa.models.files import check_precision

MAX_QUESTION_CHARS = 2000
MAX_K = 100  # passages one question may read


def check_k(k: int) -> int:
    """``k`` (passages read per question), checked: 1 to MAX_K; BadSetting (a ValueError) otherwise."""
    if not 1 <= k <= MAX_K:
        raise BadSetting(f"k must be between 1 and {MAX_K}")
    return k


@dataclass(frozen=True)
class Settings:
    index_dir: str = "index"
    device: str = "auto"  # auto | cpu | cuda[:N]
    precision: str = "auto"  # auto | fp32 | bf16 | fp16: the models' arithmetic (qa/models/files.py resolve_precision)
    chunking: ChunkSettings = field(default_factory=ChunkSettings)
    k: int = 8  # passages read per question (benchmarks/answer_ranking.py on the tuning set; reading time:
    #              benchmarks/passages_read.py)
    candidates: int = 50  # taken from each retriever before fusion
    fusion: str = "mix"  # "mix" (normalised score mix) or "rrf" (reciprocal rank fusion)
    dense_weight: float = 0.7  # weight of the dense score in "mix" (benchmarks/retrieval.py on the tuning set)
    rrf_k: int = 60
    reader: str = "span"  # "span" (the trained reader) or "rules" (sentence + rules)
    not_found_threshold: float | None = None  # confidence below which the answer is "not found"; None: the reader's own
    retrieval_weight: float = 1.0  # how much the passage's retrieval score counts when ranking answers (assistant.py;
    #                                chosen by benchmarks/answer_ranking.py on benchmarks/tuning_set.py's set)
    max_answer_tokens: int = 30
    max_question_chars: int = MAX_QUESTION_CHARS
    index_workers: int = 0  # processes that chunk reports while indexing; 0: none on a CPU, most cores with a GPU

    def __post_init__(self) -> None:
        check_k(self.k)
        if self.candidates < self.k:
            raise ValueError("candidates must be >= k")
        check_precision(self.precision, self.device)
        if self.fusion not in ("mix", "rrf"):
            raise ValueError("fusion must be 'mix' or 'rrf'")
        if not 0.0 <= self.dense_weight <= 1.0:
            raise ValueError("dense_weight must be in [0, 1]")
        if self.reader not in ("span", "rules"):
            raise ValueError("reader must be 'span' or 'rules'")
        if self.not_found_threshold is not None and not 0.0 <= self.not_found_threshold <= 1.0:
            raise ValueError("not_found_threshold must be in [0, 1]")
        if not 0.0 <= self.retrieval_weight <= 1.0:
            raise ValueError("retrieval_weight must be in [0, 1]")
        if not 1 <= self.max_answer_tokens <= 200:
            raise ValueError("max_answer_tokens must be between 1 and 200")
        if not 0 <= self.index_workers <= 256:
            raise ValueError("index_workers must be between 0 (automatic) and 256")
        if self.max_question_chars < 10:
            raise ValueError("max_question_chars must be >= 10")

    def with_(self, **changes) -> "Settings":
        return replace(self, **changes)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_env(cls, **overrides) -> "Settings":
        """Defaults, then QA_INDEX_DIR / QA_DEVICE / QA_PRECISION / QA_READER environment variables, then ``overrides``."""
        env = {}
        if os.environ.get("QA_PRECISION"):
            env["precision"] = os.environ["QA_PRECISION"]
        if os.environ.get("QA_INDEX_DIR"):
            env["index_dir"] = os.environ["QA_INDEX_DIR"]
        if os.environ.get("QA_DEVICE"):
            env["device"] = os.environ["QA_DEVICE"]
        if os.environ.get("QA_READER"):
            env["reader"] = os.environ["QA_READER"]
        env.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**env)
