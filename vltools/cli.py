"""The ``vltools`` command line: list, describe, call, serve, run (YAML workflows), index (sharded,
resumable indexing jobs on Ray), demo, ui, mcp-config and export.

stdout carries results only; progress and errors go to stderr. Exit codes: 0 ok; 2 a
`ToolError` (invalid input, not found, ``timeout:`` past ``--timeout``, ...) with one line on
stderr (``--error-json``: the error as one JSON object, details included); 1 a bug
(`InternalError`, registry error); 130 interrupted (Ctrl-C). An interrupted or timed-out call is
cancelled cooperatively and given a moment to stop before the process exits.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import TYPE_CHECKING, Any

from vltools._progress import TqdmProgress
from vltools.core.errors import InternalError, RegistryError, ToolError
from vltools.core.settings import get_settings

if TYPE_CHECKING:
    from vltools.core.registry import Registry

EXIT_TOOL_ERROR = 2
EXIT_BUG = 1
EXIT_INTERRUPTED = 130


def _print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, indent=2, ensure_ascii=False, default=str) + "\n")
    sys.stdout.flush()


def _err(line: str) -> None:
    sys.stderr.write(line.replace("\n", " ") + "\n")


def _registry(args: argparse.Namespace) -> Registry:
    """The registry the command runs on: the one given to `main`, else the process registry."""
    reg = getattr(args, "registry", None)
    if reg is not None:
        return reg
    from vltools import registry

    return registry()


def catalogue_markdown(entries: list[Any]) -> str:
    """The README's catalogue: one table row per entry, then each paper entry's fidelity note."""
    rows = [
        "| name | kind | papers | fidelity | effects | what it does |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for e in entries:
        effects = e.effects.replace("_", "-") + ("" if e.idempotent else ", not idempotent")
        rows.append(
            f"| `{e.name}` | {e.kind} | {', '.join(e.papers)} | {e.fidelity or ''} | {effects} | {e.summary} |"
        )
    notes = [f"- `{e.name}` ({e.fidelity}): {e.fidelity_note}" for e in entries if e.fidelity]
    head = "Fidelity to the cited papers (faithful, adapted, or the baseline they improve on):"
    return "\n".join(rows) + f"\n\n{head}\n\n" + "\n".join(notes) + "\n"


def cmd_list(args: argparse.Namespace) -> int:
    entries = _registry(args).list(args.tag)
    if args.markdown:
        sys.stdout.write(catalogue_markdown(entries))
        return 0
    if args.json:
        _print_json([e.model_dump(exclude={"source"}) for e in entries])
        return 0
    width = max((len(e.name) for e in entries), default=10)
    for e in entries:
        papers = ",".join(e.papers)
        sys.stdout.write(f"{e.name:<{width}}  {e.kind:<5}  {e.summary}" + (f"  [{papers}]" if papers else "") + "\n")
    return 0


def cmd_describe(args: argparse.Namespace) -> int:
    info = _registry(args).describe(args.name)
    if args.json:
        _print_json(info)
        return 0
    out = [f"{info['name']} ({info['kind']}) — {info['summary']}"]
    for p in info["papers"]:
        out.append(f"  paper {p['id']}: {p['title']}")
    if info["fidelity"]:
        out.append(f"  fidelity: {info['fidelity']} — {info['fidelity_note']}")
    out.append(f"  effects: {info['effects']}, idempotent: {'yes' if info['idempotent'] else 'no'}")
    for key in ("needs", "consumes", "produces"):
        if info[key]:
            out.append(f"  {key}: {', '.join(info[key])}")
    if info["description"]:
        out.append("")
        out.append(info["description"])
    out.append("\ninput schema:")
    out.append(json.dumps(info["input_schema"], indent=2))
    out.append("output schema:")
    out.append(json.dumps(info["output_schema"], indent=2))
    sys.stdout.write("\n".join(out) + "\n")
    return 0


def _read_input(args: argparse.Namespace) -> Any:
    from vltools.core.errors import InvalidInput

    given = [g for g in (getattr(args, "payload", None), args.json, args.input) if g is not None]
    if len(given) > 1:
        raise InvalidInput("give the input once: as the JSON argument, --json or --input",
                           hint="e.g. vltools call NAME '{\"key\": 1}'")
    if getattr(args, "payload", None) is not None:
        raw, where = (sys.stdin.read() if args.payload == "-" else args.payload), "the JSON argument"
    elif args.json is not None:
        raw, where = (sys.stdin.read() if args.json == "-" else args.json), "--json"
    elif args.input is not None:
        where = args.input
        try:
            raw = sys.stdin.read() if args.input == "-" else open(args.input, encoding="utf-8").read()
        except OSError as err:
            raise InvalidInput(f"cannot read input file {args.input}: {err.strerror}") from None
        except UnicodeDecodeError:
            raise InvalidInput(f"input file {args.input} is not UTF-8 JSON") from None
    else:
        return {}
    try:
        return json.loads(raw)
    except RecursionError:
        raise InvalidInput(f"{where} nests too deeply", hint="flatten the input") from None
    except json.JSONDecodeError as err:
        raise InvalidInput(f"{where} is not valid JSON: {err}", hint="quote the JSON in single quotes") from None


def _interactive_settings() -> Any:
    """The settings plus the working directory as an allowed root: someone at a shell calling one
    tool means the files around them (``vltools serve`` never adds it)."""
    from pathlib import Path

    from vltools.core.settings import get_settings

    s = get_settings()
    return s.model_copy(update={"extra_roots": [*s.extra_roots, Path.cwd()]})


def cmd_call(args: argparse.Namespace) -> int:
    inp = _read_input(args)
    bar = TqdmProgress(args.name)
    try:
        from vltools.core.context import Context

        ctx = Context(progress=bar, settings=_interactive_settings())
        out = _registry(args).call(args.name, inp, ctx=ctx, timeout=args.timeout)
    finally:
        bar.close()
    _print_json(out.model_dump(mode="json"))
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from vltools.server import serve

    serve(transport=args.transport, host=args.host, port=args.port)
    return 0


class _RunProgress(TqdmProgress):
    """A workflow's step events as lines on stderr; the steps' own progress as a tqdm bar."""

    def __call__(self, done: float, total: float | None, note: str) -> None:
        if note.startswith("step "):
            self.close()
            self.bar = None
            _err(f"[{self.label}] {note}")
        else:
            super().__call__(done, total, note)


def cmd_run(args: argparse.Namespace) -> int:
    """``vltools run FILE.yaml [--resume RUN_ID] [--db PATH]``: results JSON on stdout, progress on stderr.

    A failed or interrupted run (Ctrl-C included) prints the command that resumes it.
    """
    from vltools.core.context import Context
    from vltools.core.errors import InvalidInput
    from vltools.graphs.workflow import WorkflowRun

    if not args.file and not args.resume:
        raise InvalidInput("give a workflow file, or --resume RUN_ID", hint="vltools run examples/rag_folder.yaml")
    bar = _RunProgress("workflow")
    ctx = Context(progress=bar, registry=_registry(args))
    run = WorkflowRun.prepare(args.file, resume=args.resume, db=args.db, ctx=ctx)
    bar.label = run.run_id
    verb = "resuming" if run.resumed else "running"
    _err(f"[{run.run_id}] {verb} {run.workflow.name!r}: {len(run.workflow.steps)} steps; checkpoints in {run.db}")
    again = f"vltools run --resume {run.run_id}" + (f" --db {args.db}" if args.db else "")
    try:
        result = run.execute(ctx)
    except KeyboardInterrupt:
        bar.close()
        _err(f"[{run.run_id}] interrupted; to continue: {again}")
        raise
    except ToolError as err:
        bar.close()
        what = (getattr(err, "details", None) or {}).get("status", "failed")
        _err(f"[{run.run_id}] {what}; fix the cause, then: {again}")
        raise
    bar.close()
    _err(f"[{run.run_id}] completed ({len(result.steps_run)} steps run)")
    _print_json(result.model_dump(mode="json"))
    return 0


def cmd_call_or_remote(args: argparse.Namespace) -> int:
    """``vltools call``: sent to a running HTTP server with --server / VLTOOLS_SERVER (the warm CLI,
    no model loaded in this process), else run here by `cmd_call`."""
    settings = get_settings()
    server = args.server or settings.server
    if not server:
        return cmd_call(args)
    from vltools.remote import call_remote

    inp = _read_input(args)
    bar = TqdmProgress(args.name)
    try:
        data = call_remote(server, args.name, inp, token=settings.http_token,
                           timeout=args.timeout, progress=bar)
    finally:
        bar.close()
    _print_json(data)
    return 0


def cmd_index(args: argparse.Namespace) -> int:
    """``vltools index COLLECTION INPUT...``: a resumable sharded indexing job (Ray by default); the
    result JSON on stdout, progress on stderr. Run the same command again to resume a stopped job."""
    from vltools.scale import IndexSpec, run_index

    spec = IndexSpec(
        collection=args.collection, kind=args.kind, model=args.model, inputs=args.inputs, create=not args.no_create,
        index=args.index, index_shards=args.index_shards, upsert=args.upsert, batch_size=args.batch_size,
        frames=args.frames, shard_size=args.shard_size, executor=args.executor, workers=args.workers,
        address=args.address, gpus_per_worker=args.gpus_per_worker, max_shards=args.max_shards,
    )  # fmt: skip
    bar = TqdmProgress(f"index {args.collection}")
    try:
        result = run_index(spec, _interactive_settings(), progress=bar)
    finally:
        bar.close()
    _print_json(result.model_dump(mode="json"))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from vltools.demo import run_demo_cli

    return run_demo_cli(args)


def cmd_ui(args: argparse.Namespace) -> int:
    from vltools.ui.app import serve_ui

    serve_ui(host=args.host, port=args.port)
    return 0


def cmd_mcp_config(args: argparse.Namespace) -> int:
    from vltools.integrations import mcp_configs

    configs = mcp_configs(http_url=args.http)
    _print_json(configs if args.client == "all" else configs[args.client])
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from vltools.integrations import openai_tools

    _print_json(openai_tools(tag=args.tag))
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="vltools", description="Typed vision-language and retrieval tools.")
    p.add_argument("--debug", action="store_true", help="show tracebacks for unexpected errors")
    p.add_argument(
        "--error-json",
        action="store_true",
        help="print errors on stderr as one JSON object (code, message, hint, details)",
    )
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("list", help="list tools and graphs")
    s.add_argument("--tag", help="only entries with this tag")
    s.add_argument("--json", action="store_true", help="machine-readable output")
    s.add_argument("--markdown", action="store_true", help="the README's catalogue table and fidelity notes")
    s.set_defaults(func=cmd_list)

    s = sub.add_parser("describe", help="schemas, papers and needs of one tool")
    s.add_argument("name")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_describe)

    s = sub.add_parser("call", help="call a tool with JSON input; prints JSON output")
    s.add_argument("name")
    s.add_argument("payload", nargs="?", metavar="JSON",
                   help="input as a JSON string, same as --json ('-' reads stdin)")
    s.add_argument("--json", help="input as a JSON string ('-' reads stdin)")
    s.add_argument("--input", help="input JSON file ('-' reads stdin)")
    s.add_argument("--timeout", type=float, help="seconds before the call is abandoned")
    s.add_argument("--server", metavar="URL",
                   help="send the call to a running `vltools serve --transport http` (env VLTOOLS_SERVER)")
    s.set_defaults(func=cmd_call_or_remote)

    s = sub.add_parser("serve", help="run the MCP server")
    s.add_argument("--transport", choices=["stdio", "http"], default="stdio")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=8765)
    s.set_defaults(func=cmd_serve)

    s = sub.add_parser("run", help="run a YAML workflow (checkpointed, resumable)")
    s.add_argument("file", nargs="?", help="workflow YAML file")
    s.add_argument("--resume", metavar="RUN_ID", help="continue a failed run from its failed step")
    s.add_argument("--db", help="checkpoint database (default: VLTOOLS_HOME/runs.sqlite)")
    s.set_defaults(func=cmd_run)

    s = sub.add_parser("index", help="embed and index many files as a resumable sharded job (Ray: extra 'scale')")
    s.add_argument("collection", help="collection to fill (created unless --no-create)")
    s.add_argument("inputs", nargs="+", help="files, folders, globs, or .jsonl/.parquet lists (rows with 'path'; "
                   "for --kind text rows with 'id' and 'text')")
    s.add_argument("--kind", choices=["image", "video", "text"], default="image")
    s.add_argument("--model", help="CLIP or text-model spec (default: settings.clip / settings.text_model)")
    s.add_argument("--executor", choices=["ray", "local"], default="ray",
                   help="ray: an actor pool on Ray (local cluster, or --address); local: this process")
    s.add_argument("--workers", type=int, help="Ray actors (default: the CPUs Ray sees)")
    s.add_argument("--address", help="join an existing Ray cluster (e.g. 'auto', 'ray://head:10001')")
    s.add_argument("--gpus-per-worker", type=float, help="GPUs per actor (default 1 with VLTOOLS_DEVICE=cuda)")
    s.add_argument("--shard-size", type=int, default=256, help="items per embedding shard (the unit of resume)")
    s.add_argument("--batch-size", type=int, default=32, help="items per forward pass")
    s.add_argument("--frames", type=int, default=8, help="video: frames sampled per video")
    s.add_argument("--index", choices=["flat", "hnsw", "ivf", "ivfpq"], default="flat",
                   help="index type of a new collection")
    s.add_argument("--index-shards", type=int, default=1, help="index shards of a new collection")
    s.add_argument("--upsert", action="store_true", help="replace items stored with different content")
    s.add_argument("--no-create", action="store_true", help="fail when the collection does not exist")
    s.add_argument("--max-shards", type=int, help="stop after embedding this many shards (resume later)")
    s.set_defaults(func=cmd_index)

    s = sub.add_parser("demo", help="run the main job offline on the embedded models; writes an HTML report")
    s.add_argument("--out", help="folder for the world, the collections and the report (default: ./vltools-demo)")
    s.add_argument("--size", choices=["tiny", "small"], default="small", help="how much world to generate")
    s.add_argument("--open", action="store_true", help="open the report in a browser when done")
    s.set_defaults(func=cmd_demo)

    s = sub.add_parser("ui", help="a local web app over the tools (loopback; same token rules as serve)")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=8766)
    s.set_defaults(func=cmd_ui)

    s = sub.add_parser("mcp-config", help="print MCP client configurations with absolute paths")
    s.add_argument("--client", choices=["all", "claude-desktop", "cursor", "vscode"], default="all")
    s.add_argument("--http", metavar="URL", help="point clients at a running HTTP server instead of stdio")
    s.set_defaults(func=cmd_mcp_config)

    s = sub.add_parser("export", help="print every tool as function-calling schemas")
    s.add_argument("format", choices=["openai"], help="openai: Chat Completions / Responses `tools` entries")
    s.add_argument("--tag", help="only entries with this tag")
    s.set_defaults(func=cmd_export)
    return p


def _quiet_broken_pipe() -> int:
    """The reader of stdout went away (``vltools list | head -1``): stop quietly, exit 0.

    stdout is pointed at /dev/null so the interpreter's final flush does not fail again.
    """
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # stdout is not a real file (tests redirect it)
        pass
    return 0


def _report(args: argparse.Namespace, err: ToolError) -> None:
    if args.error_json:
        _err(json.dumps({"error": err.to_dict()}, ensure_ascii=False, default=str))
    else:
        _err(err.render())


def main(argv: list[str] | None = None, *, registry: Registry | None = None) -> int:
    """Run one command; returns the exit code. ``registry``: run on it instead of the process registry."""
    args = build_parser().parse_args(argv)
    args.registry = registry
    try:
        code = int(args.func(args) or 0)
        sys.stdout.flush()  # inside the try: a reader that went away is a BrokenPipeError here
        return code
    except BrokenPipeError:
        return _quiet_broken_pipe()
    except InternalError as err:  # a bug in a tool: not the caller's fault
        if args.debug and err.__cause__ is not None:
            raise err.__cause__ from None
        _report(args, err)
        return EXIT_BUG
    except ToolError as err:
        _report(args, err)
        return EXIT_TOOL_ERROR
    except RegistryError as err:
        _err(f"registry error: {err}")
        return EXIT_BUG
    except KeyboardInterrupt:
        _err("interrupted")
        return EXIT_INTERRUPTED
    except Exception as err:  # a bug: one line, traceback with --debug
        if args.debug:
            raise
        _err(f"internal error: {type(err).__name__}: {err} (run with --debug for the traceback)")
        return EXIT_BUG


def _leave(code: int) -> None:
    """Exit the process with ``code``, safely even if a tool's worker thread is still running.

    A worker abandoned after a timeout or Ctrl-C (it did not reach a stop check in time) may be
    inside torch; normal interpreter shutdown would then run C++ static destructors under it and
    abort ("terminate called without an active exception", exit 134). So after flushing, such a
    process leaves with ``os._exit``; one with no live workers exits normally.
    """
    registry_mod = sys.modules.get("vltools.core.registry")
    workers = registry_mod.running_workers() if registry_mod is not None else []
    if workers:
        for th in workers:  # a last short chance to stop at a check
            th.join(0.5)
        workers = [th for th in workers if th.is_alive()]
    if workers:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        os._exit(code)
    sys.exit(code)


def entry() -> None:
    """The ``vltools`` console script."""
    # The CLI owns its process: model-loading bars would only clutter stderr next to tqdm's.
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    try:
        code = main()
    except KeyboardInterrupt:  # a second Ctrl-C while the first one was being handled
        _err("interrupted")
        code = EXIT_INTERRUPTED
    _leave(code)


if __name__ == "__main__":
    entry()
