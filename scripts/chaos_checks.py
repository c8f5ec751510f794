"""After the chaos: convergence of the counts, and what the run leaves to inspect (dead letters, processes, logs)."""

from __future__ import annotations

import os
import re
import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

import orjson

from scripts.harness import read_topic, wait_for

if TYPE_CHECKING:
    from scripts.chaos_driver import Chaos


def converge(run: Chaos) -> None:
    """Wait until the counts match the ledger and still do 5 s later, or settle wrong, or time out.

    What it saw goes on ``run``: the final counts, the workers alive, the dead letters, problems.
    """
    assert run.producer is not None
    ledger = run.producer.ledger
    want = {m: ledger.expected(m) for m in run.models}
    start = time.monotonic()
    counts: dict[str, dict[str, int | None]] | None = None
    matched_since: float | None = None

    def matched_for_5_s() -> float | None:
        """When the counts have matched the ledger for 5 s: since when."""
        nonlocal counts, matched_since
        run.tick()
        counts = run.counts()
        if counts is None:  # Redis unreachable: nothing learnt
            return None
        if not all(
            counts[m]["predictions"] == want[m]["predictions"] and counts[m]["joined"] == want[m]["joined"]
            for m in run.models
        ):
            matched_since = None
            return None
        # Tansu's ListOffsets answers a wrong high watermark, so consumer lag cannot tell when
        # the workers are done: counts that match and stay so for 5 s (no late over-count) are.
        matched_since = matched_since or time.monotonic()
        return matched_since if time.monotonic() - matched_since >= 5 else None

    def settling() -> object:
        """The counts, while wrong counts that stop moving mean they settled: both workers up, Redis back."""
        return counts if counts is not None and run.alive() == 2 and not run.watches else time.monotonic()

    try:
        since = wait_for(
            matched_for_5_s,
            run.args.converge_timeout,
            "exact counts",
            every_s=0.5,
            progress=settling,
            stall_s=run.args.settle,
        )
        run.converged_after = since - start
        run.note(
            "converged",
            f"counts match {run.converged_after:.1f} s after the producer finished, and still do 5 s later",
        )
    except TimeoutError:
        if time.monotonic() - start < run.args.converge_timeout:
            run.note(
                "settled",
                f"counts unchanged for {run.args.settle:.0f} s with both workers alive, and they do not match",
            )
        else:
            run.note("gave up", f"counts did not converge in {run.args.converge_timeout:.0f} s")
    run.final_counts = run.counts() or {}
    run.alive_at_end = run.alive()
    try:
        run.dead_letter_counts = dead_letters(run.env)
    except Exception as exc:  # noqa: BLE001 - informative only
        run.note("dead letters unreadable", repr(exc))
    if run.alive_at_end < 2:
        run.problem(f"only {run.alive_at_end}/2 workers alive at the end")


def dead_letters(env: dict[str, str]) -> tuple[int, int]:
    """Distinct rejected events on the dead-letter topic, and how many letters in all (read until 5 s idle)."""
    records = read_topic(
        env["DRIFTLINE_KAFKA_BOOTSTRAP"],
        env["DRIFTLINE_TOPIC_DEADLETTER"],
        timeout_s=600,
        idle_s=5,
        client_id="chaos-deadletters",
    )
    docs = [orjson.loads(record.value) for record in records]
    seen = {(d.get("source_topic"), d.get("partition"), d.get("offset"), d.get("batch_index")) for d in docs}
    return len(seen), len(docs)


def leftovers(ports: list[int], app_id: str | None) -> list[str]:
    """Our processes still running: children of this process, or anything on our ports or with our app id."""
    found = set(subprocess.run(["pgrep", "-P", str(os.getpid())], capture_output=True, text=True).stdout.split())
    for port in ports:
        found.update(
            subprocess.run(["pgrep", "-f", f"127.0.0.1:{port}"], capture_output=True, text=True).stdout.split()
        )
    for pid in subprocess.run(["pgrep", "-f", "streams worker"], capture_output=True, text=True).stdout.split():
        try:
            if app_id and f"DRIFTLINE_APP_ID={app_id}".encode() in Path(f"/proc/{pid}/environ").read_bytes():
                found.add(pid)
        except OSError:
            pass
    found.discard(str(os.getpid()))
    rows = []
    for pid in sorted(found, key=int):
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            rows.append(f"{pid} {command.strip()}")
        except OSError:
            pass
    return rows


LOG_LINE = re.compile(r"\b(WARNING|ERROR|CRITICAL)\b|Traceback")


def scan_logs(workdir: Path, run_id: str) -> tuple[list[tuple[str, int, int, int]], Counter[str]]:
    """Per log: warnings, errors and tracebacks; and what they say (digits as N), counted."""
    rows: list[tuple[str, int, int, int]] = []
    patterns: Counter[str] = Counter()
    for path in sorted(workdir.glob("*.log")):
        warnings = errors = tracebacks = 0
        for line in path.read_text(errors="replace").splitlines():
            found = LOG_LINE.search(line)
            if not found:
                continue
            level = found.group(1) or "Traceback"
            if level == "WARNING":
                warnings += 1
            elif level == "Traceback":
                tracebacks += 1
            else:
                errors += 1
            text = line[found.start() :].replace(run_id, "<run>")
            if "dead letter from" in text:
                text = "WARNING] dead letter from … (one per rejected event)"
            text = re.sub(r"0x[0-9a-f]+", "0x…", text)
            text = re.sub(r"\d+(\.\d+)?", "N", text)
            patterns[text[:150]] += 1
        rows.append((path.name, warnings, errors, tracebacks))
    return rows, patterns
