"""``llm.generate``: chat completion with any configured LLM backend (needs: llm).

Graphs and workflows reach the LLM through this tool, so an answer step is a registry call
with a schema, progress and a deadline like every other step.
"""

from __future__ import annotations

import time
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from vltools.core import Context, InvalidInput, tool
from vltools.schemas import RunStats, ToolInput

MAX_PROMPT_CHARS = 200_000


MIN_TEMPERATURE = 1e-3


class Message(BaseModel):
    model_config = ConfigDict(extra="forbid")

    """One chat message."""

    role: Literal["system", "user", "assistant"] = Field(description="Who speaks.")
    content: str = Field(max_length=MAX_PROMPT_CHARS, description="What is said.")


class GenerateInput(ToolInput):
    """A prompt (or chat messages) and decoding options."""

    prompt: str | None = Field(None, max_length=MAX_PROMPT_CHARS, description="A user prompt (or give messages).")
    messages: list[Message] | None = Field(
        None, min_length=1, max_length=200, description="Chat messages, oldest first (instead of prompt)."
    )
    system: str | None = Field(None, max_length=20_000, description="Optional system message put first.")
    max_tokens: int = Field(256, ge=1, le=4096, description="Most tokens to generate.")
    temperature: float = Field(
        0.0, ge=0.0, le=2.0, description=f"0 = greedy (deterministic); below {MIN_TEMPERATURE:g} is treated as 0."
    )
    stop: list[str] = Field(default_factory=list, max_length=8, description="Strings that end generation.")
    llm: str | None = Field(None, description="LLM spec: smollm2, hf:NAME_OR_PATH, openai:ENDPOINT#MODEL.")

    @model_validator(mode="after")
    def _one_source(self) -> GenerateInput:
        if (self.prompt is None) == (self.messages is None):
            raise ValueError("give exactly one of 'prompt' or 'messages'")
        return self


class GenerateOutput(BaseModel):
    """The generated text and its cost."""

    text: str = Field(description="The generated text (stop strings removed).")
    finish_reason: str = Field(description="'stop' or 'length' (max_tokens reached).")
    llm: str = Field(description="The backend spec that answered.")
    stats: RunStats = Field(description="Forward passes, tokens and seconds.")


@tool("llm.generate")
def generate(inp: GenerateInput, ctx: Context) -> GenerateOutput:
    """Generate text with an LLM (smollm2, hf:, openai:) from a prompt or chat messages; greedy by default."""
    if inp.prompt is not None and not inp.prompt.strip():
        raise InvalidInput("the prompt is empty", hint="give the text to answer in 'prompt'")
    messages = [m.model_dump() for m in inp.messages] if inp.messages else [{"role": "user", "content": inp.prompt}]
    if inp.system:
        messages.insert(0, {"role": "system", "content": inp.system})
    ctx.progress(0, 1, "loading the LLM")
    llm = ctx.llm(inp.llm)
    ctx.progress(0, 1, "generating")
    t0 = time.perf_counter()
    # Tiny temperatures overflow logits / T; they mean "greedy" anyway.
    temperature = inp.temperature if inp.temperature >= MIN_TEMPERATURE else 0.0
    out = llm.complete(messages, max_tokens=inp.max_tokens, temperature=temperature, stop=inp.stop or None)
    ctx.progress(1, 1, "done")
    stats = RunStats(
        forward_passes=out.usage.forward_passes,
        prompt_tokens=out.usage.prompt_tokens,
        generated_tokens=out.usage.generated_tokens,
        seconds=round(time.perf_counter() - t0, 4),
    )
    return GenerateOutput(text=out.text, finish_reason=out.finish_reason, llm=llm.spec, stats=stats)
