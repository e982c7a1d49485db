"""Tools used only by the core contract tests (registered through a test registry / plugin)."""

from __future__ import annotations

import time

from pydantic import BaseModel, Field

from vltools.core import Context, InvalidInput, tool
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
