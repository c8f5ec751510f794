"""What a chaos run leaves to inspect: the dead-letter topic, processes still running, and the logs."""

from __future__ import annotations

import os
import re
import subprocess
from collections import Counter
from pathlib import Path

import orjson

from scripts.harness import read_topic


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
