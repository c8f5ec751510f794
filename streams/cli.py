"""The ``driftline`` command: worker, notify, status, models, reference, report, up and demo."""

from __future__ import annotations

import argparse
import gc
import logging
import subprocess
import sys
from pathlib import Path

from streams.errors import ConfigurationError, DriftlineError
from streams.settings import Settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="driftline", description="Live monitoring of ML models from Kafka events.")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("worker", help="run a stream worker (settings from DRIFTLINE_* variables)")
    status = commands.add_parser("status", help="print models, counts, metric, status and open alerts")
    status.add_argument("model", nargs="?", help="one model, with its open alerts")
    status.add_argument("--json", action="store_true", help="print models and live workers as one JSON document")
    commands.add_parser(
        "notify",
        help="deliver alerts to Alertmanager and webhooks (DRIFTLINE_ALERTMANAGER_URL, DRIFTLINE_WEBHOOK_URLS)",
    )
    models = commands.add_parser("models", help="per-model configuration as code")
    model_commands = models.add_subparsers(dest="action", required=True)
    apply = model_commands.add_parser("apply", help="store model configuration files (JSON or YAML) in Redis")
    apply.add_argument("files", nargs="+", type=Path)
    model_commands.add_parser("show", help="print the stored model configurations")
    reference = commands.add_parser("reference", help="a model's training sample as its drift reference")
    reference_commands = reference.add_subparsers(dest="action", required=True)
    ref_set = reference_commands.add_parser("set", help="profile a CSV or JSON-lines sample and store it")
    ref_set.add_argument("model")
    ref_set.add_argument("file", type=Path)
    report = commands.add_parser("report", help="a model's dashboard page as one self-contained HTML file, or JSON")
    report.add_argument("model")
    report.add_argument("--html", type=Path, metavar="FILE", help="write the page here")
    report.add_argument("--json", type=Path, metavar="FILE", help="the same content as JSON (- for stdout)")
    up = commands.add_parser("up", help="run a broker on localhost:29092, Redis and one worker until Ctrl-C")
    up.add_argument("--data-dir", type=Path, default=Path(".driftline"), help="Redis data, logs (.driftline)")
    up.add_argument("--kafka-port", type=int, default=29092, help="the broker's port (default 29092)")
    up.add_argument("--web-port", type=int, default=6066, help="dashboard and API port (6066)")
    up.add_argument("--redis-port", type=int, default=6399, help="the Redis port (default 6399)")
    demo = commands.add_parser("demo", help="run the whole thing on an embedded broker and Redis")
    demo.add_argument("--duration", type=float, default=90.0, help="seconds of traffic (default 90)")
    demo.add_argument("--models", type=int, default=3, help="how many models to simulate (default 3)")
    demo.add_argument("--rate", type=float, default=400.0, help="predictions per second per model")
    demo.add_argument("--stay", action="store_true", help="keep the dashboard up after the traffic, until Ctrl-C")
    args = parser.parse_args(argv)
    try:
        if args.command == "worker":
            return run_worker(Settings())
        if args.command == "status":
            return run_status(Settings(), args.model, args.json)
        if args.command == "notify":
            return run_notify(Settings())
        if args.command == "reference":
            return run_reference(Settings(), args.model, args.file)
        if args.command == "models":
            return run_models(Settings(), args.action, getattr(args, "files", []))
        if args.command == "report":
            return run_report(Settings(), args.model, args.html, args.json)
        if args.command == "up":
            from streams.up import run_up

            return run_up(args.data_dir, args.kafka_port, args.redis_port, args.web_port)
        return run_demo(args)
    except DriftlineError as exc:
        print(f"driftline: {exc}", file=sys.stderr)
        return 2


def run_worker(settings: Settings) -> int:
    import faust

    from detectors.calibration import prepare_tables
    from streams.app import create_app
    from streams.topics import ensure_topics

    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    partitions = ensure_topics(settings)
    app = create_app(settings, partitions)
    prepare_tables(settings.drift_window)  # not in the first flush that calibrates a feature
    collect_garbage_rarely()
    worker = faust.Worker(app, loglevel=settings.log_level, quiet=True)
    worker.execute_from_commandline()  # NoReturn: it exits the process


def collect_garbage_rarely() -> None:
    """Tune Python's cyclic garbage collector for a worker's state: many small, long-lived objects.

    A worker keeps every model's detectors (tens of objects per feature) for
    its whole life, and creates them by the thousand when new models come. With
    CPython's default thresholds (a young collection every 700 allocations) the
    collector keeps re-examining them: about a quarter of the worker's time
    with 1,000 new models of 20 features (``scripts.bench``). The objects made
    while starting (modules, classes) are frozen out of collection, and young
    collections come every 50,000 allocations. Reference counting still frees
    everything that is not in a cycle at once; cycles wait a little longer.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)


def run_status(settings: Settings, model: str | None, as_json: bool = False) -> int:
    import json

    import redis

    from streams.keys import RedisKeys
    from streams.redis_client import sync_client
    from streams.status import render_status, status_document

    keys = RedisKeys(settings.redis_prefix)
    try:
        client = sync_client(settings)
        if as_json:
            print(json.dumps(status_document(client, keys, model), indent=2, sort_keys=True))
        else:
            print(render_status(client, keys, model))
    except redis.RedisError as exc:
        print(f"driftline: cannot read Redis ({settings.redis_mode}): {exc}", file=sys.stderr)
        return 2
    return 0


def run_notify(settings: Settings) -> int:
    import asyncio

    from streams.notify import run_notifier

    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return asyncio.run(run_notifier(settings))


def run_models(settings: Settings, action: str, files: list[Path]) -> int:
    import json

    from streams.keys import RedisKeys
    from streams.model_config import ModelConfigStore, load_file
    from streams.redis_client import sync_client

    store = ModelConfigStore(RedisKeys(settings.redis_prefix))
    client = sync_client(settings)
    if action == "show":
        print(json.dumps(store.show(client), indent=2, sort_keys=True))
        return 0
    configs = [config for path in files for config in load_file(path)]
    version = store.apply(client, configs)
    print(
        f"applied {len(configs)} model configuration(s): {', '.join(c.model_id for c in configs)} "
        f"(version {version}; running workers pick it up within seconds)"
    )
    return 0


def run_reference(settings: Settings, model_id: str, path: Path) -> int:
    from streams.keys import RedisKeys
    from streams.model_config import ModelConfigStore
    from streams.redis_client import sync_client
    from streams.reference import ReferenceStore, build_reference, read_rows
    from streams.validation import MODEL_ID

    if not MODEL_ID.fullmatch(model_id):
        raise ConfigurationError(f"not a model id: {model_id!r}")
    profiles = build_reference(read_rows(path))
    keys = RedisKeys(settings.redis_prefix)
    client = sync_client(settings)
    ReferenceStore(keys).set(client, model_id, profiles)
    ModelConfigStore(keys).bump(client)
    kinds = sorted(
        f"{name} ({type(p).__name__.removesuffix('Profile').lower()}, n={p.n})" for name, p in profiles.items()
    )
    print(f"reference for {model_id}: {len(profiles)} features: {', '.join(kinds)}")
    return 0


def run_report(settings: Settings, model_id: str, html_path: Path | None, json_path: Path | None) -> int:
    import json

    from streams.history import HistoryPolicy
    from streams.keys import RedisKeys
    from streams.redis_client import sync_client
    from streams.report import render_html, report_document

    if html_path is None and json_path is None:
        raise ConfigurationError("say where to write the report: --html FILE and/or --json FILE")
    document = report_document(
        sync_client(settings), RedisKeys(settings.redis_prefix), model_id, HistoryPolicy.of(settings)
    )
    if document is None:
        raise ConfigurationError(f"no model {model_id!r} in Redis")
    if html_path is not None:
        html_path.write_text(render_html(document), encoding="utf-8")
        print(f"report of {model_id}: {html_path} (self-contained: open it anywhere, no network needed)")
    if json_path is not None:
        text = json.dumps(document, indent=2, sort_keys=True)
        if str(json_path) == "-":
            print(text)
        else:
            json_path.write_text(text + "\n", encoding="utf-8")
            print(f"report of {model_id} as data: {json_path}")
    return 0


def run_demo(args: argparse.Namespace) -> int:
    """The demo lives in ``scripts/demo.py`` of a source checkout: ``python -m scripts.demo`` there, as a child."""
    root = Path(__file__).resolve().parent.parent
    if not (root / "scripts" / "demo.py").exists():
        print("driftline: the demo runs from a source checkout (scripts/demo.py not found)", file=sys.stderr)
        return 2
    command = [sys.executable, "-m", "scripts.demo", "--duration", str(args.duration)]
    command += ["--models", str(args.models), "--rate", str(args.rate), *(["--stay"] if args.stay else [])]
    child = subprocess.Popen(command, cwd=root)
    while True:
        try:
            return child.wait()
        except KeyboardInterrupt:  # the child has the same Ctrl-C and stops cleanly: wait for it
            continue


if __name__ == "__main__":
    sys.exit(main())
