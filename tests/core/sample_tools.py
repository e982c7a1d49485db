"""Tools used only by the core contract tests (registered through a test registry / plugin)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from pydantic import BaseModel, Field

from vltools.core import Context, InvalidInput, NotFound, tool
from vltools.core.cancel import current_should_stop, stopped_early
from vltools.schemas import ToolInput


class EchoInput(ToolInput):
    text: str = Field(min_length=1, description="Text to echo.")
    times: int = Field(1, ge=1, le=5, description="How often.")


class EchoOutput(BaseModel):
    text: str = Field(description="The echoed text.")


@tool("sample.echo")
def echo(inp: EchoInput, ctx: Context) -> EchoOutput:
    """Echo the text."""
    for i in range(inp.times):
        ctx.progress(i + 1, inp.times, "echo")
    if inp.text == "refuse":
        raise InvalidInput("the text 'refuse' is refused", hint="send another text")
    return EchoOutput(text=" ".join([inp.text] * inp.times))


class SleepInput(ToolInput):
    seconds: float = Field(ge=0, le=30, description="How long to work.")


@tool("sample.sleep")
def sleep(inp: SleepInput, ctx: Context) -> EchoOutput:
    """Work in small steps, checking the deadline."""
    end = time.monotonic() + inp.seconds
    while time.monotonic() < end:
        time.sleep(0.01)
        ctx.progress(0, None, "sleeping")
    return EchoOutput(text="done")


@tool("sample.broken")
def broken(inp: EchoInput, ctx: Context) -> EchoOutput:
    """Returns output that does not match its schema."""
    return {"wrong": 1}  # type: ignore[return-value]


# -- a private two-tool registry: the outer tool calls the inner one through ctx.call -----------
class InnerInput(ToolInput):
    text: str = Field(min_length=1, description="Text to wrap.")


class InnerOutput(BaseModel):
    text: str = Field(description="The wrapped text.")
    registry: str = Field(description="Which registry ran the call (its label).")


@tool("demo.inner")
def inner(inp: InnerInput, ctx: Context) -> InnerOutput:
    """Wrap the text in brackets."""
    return InnerOutput(text=f"[{inp.text}]", registry=getattr(ctx.registry, "label", "?"))


@tool("demo.outer")
def outer(inp: InnerInput, ctx: Context) -> InnerOutput:
    """Call demo.inner twice (nested calls run on the registry running this one)."""
    once = ctx.call("demo.inner", {"text": inp.text})
    twice = ctx.call("demo.inner", {"text": once.text})
    return InnerOutput(text=twice.text, registry=twice.registry)


# -- cancellation: a "backend" that holds a lock while it works, polling the stop signal ----------
BACKEND_LOCK = threading.Lock()


class SpinInput(ToolInput):
    marker: str | None = Field(None, description="File created once the work started.")
    seconds: float = Field(60, ge=0, le=600, description="Most time to spin.")


@tool("sample.spin")
def spin(inp: SpinInput, ctx: Context) -> EchoOutput:
    """Hold BACKEND_LOCK and spin like a generation loop, checking only the ambient stop signal
    (as a backend does between tokens), never ctx.progress."""
    stop = current_should_stop()
    with BACKEND_LOCK:
        if inp.marker:
            Path(inp.marker).write_text("started")
        end = time.monotonic() + inp.seconds
        while time.monotonic() < end:
            if stop is not None and stop():
                raise stopped_early("spinning")
            time.sleep(0.01)
    return EchoOutput(text="spun")


@tool("sample.crash")
def crash(inp: EchoInput, ctx: Context) -> EchoOutput:
    """A tool with a bug: a bare exception."""
    raise KeyError(inp.text)


@tool("sample.fail_with_details")
def fail_with_details(inp: EchoInput, ctx: Context) -> EchoOutput:
    """Fails with a ToolError carrying details."""
    raise NotFound(f"no run {inp.text!r}", hint="list the runs", details={"run_id": inp.text, "n": 3})


class BusyInput(ToolInput):
    seconds: float = Field(60, ge=0, le=600, description="How long to keep torch busy.")
    marker: str | None = Field(None, description="File created once torch is computing.")


@tool("sample.torch_busy")
def torch_busy(inp: BusyInput, ctx: Context) -> EchoOutput:
    """Keep torch busy, ignoring every stop signal (a backend without a stop check)."""
    import torch

    a = torch.randn(384, 384)
    end = time.monotonic() + inp.seconds
    while time.monotonic() < end:
        a = (a @ a).tanh()
        if inp.marker and not Path(inp.marker).exists():
            Path(inp.marker).write_text("computing")
    return EchoOutput(text="busy")
