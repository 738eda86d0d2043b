"""Print the figures of the last ``make stress`` run (.cache/stress/summary.json) as a short report.

    python benchmarks/stress_report.py [SUMMARY_JSON]
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

DEFAULT = Path(__file__).resolve().parents[1] / ".cache" / "stress" / "summary.json"


def report(summary: dict) -> list[str]:
    lines = [f"stress run started {summary.get('run', {}).get('started', '?')}"]
    if f := summary.get("faults"):
        lines.append(f"faults: {f['kills_landed']} SIGKILLs of `qa index` landed and survived "
                     f"({f['runs_finished_before_their_kill']} runs ended before their kill), "
                     f"{f['recoveries_completed']} following runs completed; a full run takes {f['full_run_s']} s")
        lines += [f"  {n:3d}  {phase}" for phase, n in f["kills_by_phase"].items()]
    if c := summary.get("concurrent_writers"):
        lines.append(f"two writers: {c['second_cli_writer']}; a library upsert waited {c['library_upsert_waited_s']} s")
    if ld := summary.get("load"):
        rss = {k: v for k, v in ld.items() if k.startswith("rss_after")}
        lines.append(f"load: {ld['clients']} clients x {ld['questions_per_client']} questions, "
                     f"{ld['questions_total']} questions in all; errors {ld['errors']}, answers differing from the "
                     f"single-user answer {ld['answers_differing_from_single_user']}")
        lines.append(f"  latency single user {ld['single_user_mean_s']} s; concurrent p50 {ld['concurrent_p50_s']} s, "
                     f"p95 {ld['concurrent_p95_s']} s, {ld['concurrent_questions_per_s']} questions/s; "
                     f"k=1 p50 {ld['k1_p50_s']} s, p95 {ld['k1_p95_s']} s")
        lines.append("  server RSS " + ", ".join(f"{k[len('rss_after_'):-3]}: {v} MB" for k, v in rss.items())
                     + f" (growth {ld['rss_growth_pct']}%)")
    if r := summary.get("reads_during_upserts"):
        lines.append(f"reads during upserts: {r['upserts']} upserts, {r.get('opens', 0)} opens, "
                     f"{r.get('long_lived_asks', 0)} asks by a reloading reader; {r['pruned_under_reader']} opens "
                     f"hit a pruned generation, {r['other_errors']} other errors")
    for name in ("badinput", "corruption"):
        if t := summary.get(f"{name}_tally_last_fast_run"):
            tally = t["tally"]
            lines.append(f"{name} ({t['written']}): {sum(tally.values())} tried: "
                         + ", ".join(f"{k.split(':', 1)[1]}={v}" for k, v in tally.items()))
    return lines


def main(argv: list[str]) -> int:
    path = Path(argv[0]) if argv else DEFAULT
    if not path.exists():
        print(f"no stress summary at {path}; run `make stress` first", file=sys.stderr)
        return 2
    print("\n".join(report(json.loads(path.read_text()))))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
