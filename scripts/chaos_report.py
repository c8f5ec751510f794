"""The chaos run's report: counts per model against the ledger, the timeline, what the logs say, PASS or FAIL."""

from __future__ import annotations

from scripts.chaos_checks import scan_logs
from scripts.chaos_driver import Chaos


def report(run: Chaos, total_s: float, interrupted: bool, leftovers: list[str]) -> bool:
    """Print the report; return whether the run passed."""
    out: list[str] = []
    ledger = run.producer.ledger if run.producer is not None else None
    ok_models = True
    other_mismatch = []
    if ledger is not None and not run.final_counts:
        out.append("\nCounts not compared: the run did not get that far.")
    if ledger is not None and run.final_counts:
        out.append("\n## Counts per model\n")
        out.append("| model | predictions expected | predictions got | joined expected | joined got | result |")
        out.append("|---|---:|---:|---:|---:|---|")
        for m in run.models:
            want = ledger.expected(m)
            got = run.final_counts.get(m, {})
            ok = got.get("predictions") == want["predictions"] and got.get("joined") == want["joined"]
            ok_models &= ok
            out.append(
                f"| {m} | {want['predictions']} | {got.get('predictions')} | {want['joined']} | "
                f"{got.get('joined')} | {'OK' if ok else 'MISMATCH'} |"
            )
            for f in ("outcomes", "invalid"):
                if got.get(f) != want[f]:
                    other_mismatch.append(f"{m} {f} expected {want[f]} got {got.get(f)}")
        out.append("")
        out.append(
            "Also checked: `outcomes` and `invalid` "
            + ("match for every model." if not other_mismatch else "differ: " + "; ".join(other_mismatch))
        )
        if run.dead_letter_counts is not None:
            distinct, total = run.dead_letter_counts
            out.append(
                f"Dead letters: {distinct} distinct rejected events on the topic, {ledger.rejected} expected"
                f"{' (OK)' if distinct == ledger.rejected else ' (DIFFERENT)'}; {total - distinct} "
                f"repeated after a crash."
            )
        out.append(
            f"Traffic: {ledger.messages} messages, {ledger.events} events; "
            f"{sum(ledger.predictions.values())} valid predictions, {sum(ledger.outcomes.values())} valid "
            f"outcomes ({ledger.duplicate_outcomes} sent twice, {ledger.early_outcomes} before their "
            f"prediction), {ledger.batches} array batches ({ledger.mixed_batches} of several models), "
            f"{ledger.unkeyed} unkeyed and {ledger.miskeyed} wrongly keyed messages, "
            f"{ledger.malformed_messages} malformed messages, {sum(ledger.invalid.values())} invalid events "
            f"of known models."
        )
    out.append("\n## Timeline\n")
    out.append("| t (s) | event | detail |")
    out.append("|---:|---|---|")
    for t, event, detail in run.timeline:
        out.append(f"| {t:.1f} | {event} | {detail.replace('|', '/')} |")
    rows, patterns = scan_logs(run.workdir, run.run_id)
    out.append(f"\n## Logs ({run.workdir})\n")
    out.append("| log | WARNING | ERROR/CRITICAL | Traceback |")
    out.append("|---|---:|---:|---:|")
    for name, w, e, tb in rows:
        out.append(f"| {name} | {w} | {e} | {tb} |")
    if patterns:
        out.append("\nWhat they say (digits as N), most frequent first:\n")
        for text, n in patterns.most_common(20):
            out.append(f"- {n} x `{text.replace('`', chr(39))}`")
    if leftovers:
        out.append("\nLEFT RUNNING: " + "; ".join(leftovers))
    passed = (
        ledger is not None
        and bool(run.final_counts)
        and ok_models
        and not run.problems
        and run.alive_at_end == 2
        and not interrupted
        and not leftovers
        and ledger.send_errors == 0
        and run.producer is not None
        and run.producer.error is None
    )
    p = run.producer
    span = (p.finished_at - p.started_at) if p is not None and p.finished_at else 0.0
    events = ledger.events if ledger is not None else 0
    out.append("")
    if run.problems:
        out.append("Problems: " + "; ".join(run.problems))
    out.append(
        f"**Summary:** {events} events in {span:.1f} s ({events / span if span else 0:.0f} events/s), "
        f"kills {run.kills}, Redis restarts {run.redis_restarts + run.redis_outages} "
        f"({run.redis_restarts} stop/start, {run.redis_outages} outage of {run.args.outage:.0f} s), "
        f"workers alive at the end {run.alive_at_end}/2, "
        + (
            f"converged {run.converged_after:.1f} s after the producer, "
            if run.converged_after is not None
            else "not converged, "
        )
        + f"seed {run.args.seed}, run time {total_s:.0f} s, leftover processes {len(leftovers)}: "
        + ("**INTERRUPTED**" if interrupted else ("**PASS**" if passed else "**FAIL**"))
    )
    print("\n".join(out), flush=True)
    return passed
