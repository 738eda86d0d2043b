"""Helpers for the stress tests (``make stress``): the run summary, a generated corpus, process and lock probes.

Not a conftest.py on purpose: tests/ and tests/stress/ have no __init__.py, so a second conftest module would
shadow tests/conftest.py for ``from conftest import ...`` in the modules collected after it.

Figures are printed as they are measured (``make stress`` runs pytest with ``-s``) and merged into
.cache/stress/summary.json, which holds this run only, plus the tallies the fast bad-input and corruption tests
wrote on their last run.
"""
from __future__ import annotations

import json
import os
import random
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / ".cache" / "stress"
SUMMARY = CACHE / "summary.json"
_RUN = {"pid": os.getpid(), "started": time.strftime("%Y-%m-%dT%H:%M:%S")}

# The harness's own gradio_client must stay offline too (it asks huggingface.co for an agent registry and sends
# telemetry unless told not to): set before anything imports huggingface_hub, and again in offline_client().
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")


def env_int(name: str, default: int) -> int:
    """A size of the run, overridable for a quick try (e.g. QA_STRESS_KILLS=3)."""
    return int(os.environ.get(name) or default)


def record(section: str, figures: dict) -> None:
    """Merge ``figures`` into this run's summary.json and print them."""
    CACHE.mkdir(parents=True, exist_ok=True)
    try:
        summary = json.loads(SUMMARY.read_text())
    except (OSError, ValueError):
        summary = {}
    if summary.get("run") != _RUN:
        summary = {"run": _RUN}
    for name in ("badinput", "corruption"):  # written by tests/test_badinput.py and tests/test_corruption.py
        try:
            summary[f"{name}_tally_last_fast_run"] = json.loads((CACHE / f"{name}.json").read_text())
        except (OSError, ValueError):
            pass
    summary[section] = figures
    SUMMARY.write_text(json.dumps(summary, indent=1, ensure_ascii=False))
    print(f"\n[stress] {section}: {json.dumps(figures, ensure_ascii=False)}", flush=True)
    tallies = {k: v["tally"] for k, v in summary.items() if k.endswith("_tally_last_fast_run")}
    for name, tally in tallies.items():
        print(f"[stress] {name}: {sum(tally.values())} tried: "
              + ", ".join(f"{k.split(':', 1)[1]}={v}" for k, v in tally.items()), flush=True)
    print(f"[stress] summary: {SUMMARY}", flush=True)


# ---------------------------------------------------------------- a corpus that takes a few seconds to index

_PLACES = ["Tromso", "Valparaiso", "Mombasa", "Gdansk", "Hobart", "Cusco", "Tbilisi", "Dakar", "Osaka", "Quebec",
           "Lviv", "Perth", "Bergen", "Accra", "Hanoi", "Leon"]
_SUBJECTS = ["the ferry service", "the water utility", "a copper smelter", "the regional hospital", "the tram network",
             "a fishing cooperative", "the grain terminal", "a solar farm", "the city archive", "a textile mill"]
_VERBS = ["reported", "announced", "recorded", "confirmed", "estimated", "measured"]
_THINGS = ["passengers", "tonnes of grain", "megawatt hours", "patients", "visitors", "inspections", "containers"]


def write_corpus(folder: Path, n_reports: int = 60, seed: int = 0) -> Path:
    """seeds/ plus ``n_reports`` generated reports of one chunk each (none about Iraq), deterministic."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for p in (ROOT / "seeds").glob("*.txt"):
        (folder / p.name).write_text(p.read_text(encoding="utf-8"), encoding="utf-8")
    for i in range(n_reports):
        place, subject = rng.choice(_PLACES), rng.choice(_SUBJECTS)
        sentences = [f"{subject.capitalize()} in {place} {rng.choice(_VERBS)} {rng.randint(100, 99999):,} "
                     f"{rng.choice(_THINGS)} in {rng.randint(1990, 2024)}." for _ in range(7)]
        (folder / f"report-{i:03d}.txt").write_text(f"{place} bulletin {i}\n" + " ".join(sentences) + "\n",
                                                    encoding="utf-8")
    return folder


# ---------------------------------------------------------------- processes, locks, servers


def qa_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "qa", *args]


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT)
    env.setdefault("RUST_BACKTRACE", "0")
    return env


def holds_write_lock(pid: int, index: Path) -> bool:
    """Whether process ``pid`` holds the flock on ``index``/.lock (read from /proc/locks: nothing is disturbed)."""
    try:
        inode = os.stat(index / ".lock").st_ino
        lines = Path("/proc/locks").read_text().splitlines()
    except OSError:
        return False
    for line in lines:  # "1: FLOCK  ADVISORY  WRITE 4242 fd:01:123456 0 EOF"; waiters read "1: -> FLOCK ..."
        f = line.split()
        if len(f) > 5 and f[1] == "FLOCK" and f[4] == str(pid) and f[5].rsplit(":", 1)[-1] == str(inode):
            return True
    return False


def status_kb(pid: int, *names: str) -> dict[str, int]:
    """The named kB fields of /proc/PID/status (VmRSS, RssAnon, RssFile, ...)."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name = line.split(":", 1)[0]
        if name in names:
            out[name] = int(line.split()[1])
    return out


def rss_parts_kb(pid: int) -> dict[str, int]:
    """The resident memory's parts: RssAnon (heap, stacks: what a leak grows) and RssFile (pages of the libraries
    and files mapped, which fill in as code paths are first run and which the kernel may drop)."""
    return status_kb(pid, "RssAnon", "RssFile")


def rss_kb(pid: int) -> int:
    rss = status_kb(pid, "VmRSS").get("VmRSS")
    if rss is None:
        raise RuntimeError(f"no VmRSS for {pid}")
    return rss


def offline_client(url: str, timeout_s: float | None = None):
    import huggingface_hub.constants as hf

    hf.HF_HUB_OFFLINE = hf.HF_HUB_DISABLE_TELEMETRY = True
    from gradio_client import Client

    return Client(url, verbose=False, analytics_enabled=False,
                  httpx_kwargs={"timeout": timeout_s} if timeout_s else None)


def wait_for_port(proc: subprocess.Popen | None, port: int, timeout_s: float) -> float:
    """Seconds until ``port`` accepts connections; fails if ``proc`` (the server's process, when it is another one)
    exits first."""
    t0 = time.monotonic()
    while True:
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"the server exited with {proc.returncode} before listening")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return time.monotonic() - t0
        except OSError:
            if time.monotonic() - t0 > timeout_s:
                raise AssertionError(f"nothing listening on port {port} after {timeout_s:.0f} s") from None
            time.sleep(0.25)


def percentile(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(p / 100 * (len(s) - 1))))] if s else float("nan")
