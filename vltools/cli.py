"""The ``vltools`` command line: list, describe, call, serve (and run for YAML workflows).

stdout carries results only; progress and errors go to stderr. A `ToolError` or invalid
input prints one line on stderr and exits 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from vltools.core.errors import RegistryError, ToolError

EXIT_TOOL_ERROR = 2


def _print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, indent=2, ensure_ascii=False, default=str) + "\n")
    sys.stdout.flush()


def _err(line: str) -> None:
    sys.stderr.write(line.replace("\n", " ") + "\n")


class _TqdmProgress:
    """Progress callback drawing one tqdm bar per call on stderr."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.bar: Any = None

    def __call__(self, done: float, total: float | None, note: str) -> None:
        from tqdm import tqdm

        if self.bar is None or (total is not None and self.bar.total != total):
            if self.bar is not None:
                self.bar.close()
            self.bar = tqdm(total=total, desc=self.label, file=sys.stderr, leave=False, dynamic_ncols=True)
        self.bar.n = done
        if note:
            self.bar.set_postfix_str(note[:60], refresh=False)
        self.bar.refresh()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


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
    from vltools import list_tools

    entries = list_tools(tag=args.tag)
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
    from vltools import registry

    info = registry().describe(args.name)
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

    if args.json is not None and args.input is not None:
        raise InvalidInput("give either --json or --input, not both")
    if args.json is not None:
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
    except json.JSONDecodeError as err:
        raise InvalidInput(f"{where} is not valid JSON: {err}", hint="quote the JSON in single quotes") from None


def cmd_call(args: argparse.Namespace) -> int:
    import vltools

    inp = _read_input(args)
    bar = _TqdmProgress(args.name)
    try:
        out = vltools.call(args.name, inp, progress=bar, timeout=args.timeout)
    finally:
        bar.close()
    _print_json(out.model_dump(mode="json"))
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from vltools.server import serve

    serve(transport=args.transport, host=args.host, port=args.port)
    return 0


class _RunProgress(_TqdmProgress):
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
    ctx = Context(progress=bar)
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


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="vltools", description="Typed vision-language and retrieval tools.")
    p.add_argument("--debug", action="store_true", help="show tracebacks for unexpected errors")
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
    s.add_argument("--json", help="input as a JSON string ('-' reads stdin)")
    s.add_argument("--input", help="input JSON file ('-' reads stdin)")
    s.add_argument("--timeout", type=float, help="seconds before the call is abandoned")
    s.set_defaults(func=cmd_call)

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
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except ToolError as err:
        _err(err.render())
        return EXIT_TOOL_ERROR
    except RegistryError as err:
        _err(f"registry error: {err}")
        return 1
    except KeyboardInterrupt:
        _err("interrupted")
        return 130
    except Exception as err:  # a bug: one line, traceback with --debug
        if args.debug:
            raise
        _err(f"internal error: {type(err).__name__}: {err} (run with --debug for the traceback)")
        return 1


if __name__ == "__main__":
    sys.exit(main())
