"""The tool-calling agent: a LangGraph loop (model → guard → tools → model ...) over registry tools.

Works with any LangChain chat model that supports ``bind_tools``; ``openai:ENDPOINT#MODEL``
builds a ``ChatOpenAI`` (install extra ``agent``: ``langchain-openai``). Every tool call the
model makes passes the ``guard`` node first (`vltools.agents.safety.check_call`): a destructive
call without ``confirm``, a write outside what the request named, or a call to an agent is not
run; the model gets an error message saying why. Tool errors also come back to the model as
error messages (``ToolNode`` with ``handle_tool_errors``) instead of crashing the loop.
"""

from __future__ import annotations

from typing import Any

from vltools.core.context import Context
from vltools.core.errors import InvalidInput, Unsupported

SYSTEM = ("You are vltools' agent. Use the tools to do what the user asks; call a tool only with inputs that fit "
          "its schema. When done, answer briefly and say which tools you used.")


def chat_model_from_spec(spec: str) -> Any:
    """``openai:ENDPOINT#MODEL`` → a LangChain ``ChatOpenAI`` on an operator-configured endpoint."""
    if not spec.startswith("openai:") or "#" not in spec:
        raise InvalidInput("unknown chat model spec", hint="use 'openai:ENDPOINT#MODEL' with an endpoint named in "
                           "VLTOOLS_LLM_ENDPOINTS (e.g. 'openai:local#qwen2.5-7b-instruct') or a chat model object")
    from vltools.core.endpoints import resolve_endpoint
    from vltools.core.settings import get_settings

    where, _, model = spec[len("openai:"):].partition("#")
    endpoint = resolve_endpoint(where, get_settings())  # refused here, before any connection
    try:
        from langchain_openai import ChatOpenAI  # type: ignore[import-not-found]
    except ImportError as err:
        raise Unsupported("the openai: chat backend needs langchain-openai",
                          hint="pip install langchain-openai, or pass a LangChain chat model object") from err
    return ChatOpenAI(base_url=endpoint.base_url, model=model, api_key=endpoint.api_key or "none", temperature=0)


def build_loop(chat_model: Any, tools: list[Any], guard: Any = None) -> Any:
    """Compile the loop: ``agent`` calls the model; ``guard`` answers the calls it refuses; ``tools`` runs the rest.

    ``guard(name, args) -> str`` returns '' for a call that may run, else the reason it may not.
    """
    from langchain_core.messages import AIMessage, SystemMessage, ToolMessage
    from langgraph.graph import END, START, MessagesState, StateGraph
    from langgraph.prebuilt import ToolNode, tools_condition

    bound = chat_model.bind_tools(tools)
    tool_node = ToolNode(tools, handle_tool_errors=True)

    def agent(state: MessagesState) -> dict[str, Any]:
        return {"messages": [bound.invoke([SystemMessage(SYSTEM), *state["messages"]])]}

    def _pending(state: MessagesState) -> list[dict[str, Any]]:
        """The last model message's tool calls that have no answer yet."""
        msgs = state["messages"]
        k = max(i for i, m in enumerate(msgs) if isinstance(m, AIMessage))
        answered = {m.tool_call_id for m in msgs[k + 1:] if isinstance(m, ToolMessage)}
        return [c for c in msgs[k].tool_calls if c["id"] not in answered]

    def guard_node(state: MessagesState) -> dict[str, Any]:
        refused = []
        for call in _pending(state):
            why = guard(call["name"], call["args"]) if guard is not None else ""
            if why:
                refused.append(ToolMessage(f"Refused, not run: {why}.", name=call["name"], tool_call_id=call["id"],
                                           status="error", artifact={"refused": why}))
        return {"messages": refused}

    def after_guard(state: Any) -> str:  # (LangGraph reads the hints of branch functions)
        return "tools" if _pending(state) else "agent"

    def run_tools(state: MessagesState) -> dict[str, Any]:
        out = tool_node.invoke(_pending(state))
        return {"messages": out["messages"] if isinstance(out, dict) else list(out)}

    g = StateGraph(MessagesState)
    g.add_node("agent", agent)
    g.add_node("guard", guard_node)
    g.add_node("tools", run_tools)
    g.add_edge(START, "agent")
    g.add_conditional_edges("agent", tools_condition, {"tools": "guard", END: END})
    g.add_conditional_edges("guard", after_guard, {"tools": "tools", "agent": "agent"})
    g.add_edge("tools", "agent")
    return g.compile()


def run_tool_loop(model: Any, request: str, names: list[str], ctx: Context | None = None,
                  *, max_steps: int = 8, confirm: bool = False, given: dict[str, Any] | None = None) -> dict[str, Any]:
    """Run the guarded loop for ``request`` over registry tools ``names`` (agents are left out).

    Returns ``{"answer": str, "calls": [(tool name, args), ...] (run), "refused": [reason, ...],
    "messages": [...]}``.
    """
    import vltools
    from vltools.agents.parse import parse
    from vltools.agents.router import known_collections
    from vltools.agents.safety import check_call
    from vltools.core.registry import get_registry

    reg = get_registry()
    chat = chat_model_from_spec(model) if isinstance(model, str) else model
    names = [n for n in names if reg.spec(n).kind != "agent"]
    tools = vltools.as_langchain_tools(names=names)
    by_lc = {t.name: reg.spec(t.name).name for t in tools}
    parsed = parse(request, list(known_collections(ctx or Context(registry=reg))))

    def guard(lc_name: str, args: dict[str, Any]) -> str:
        name = by_lc.get(lc_name)
        if name is None:
            return ""  # unknown tool: ToolNode answers with the list of tools
        return check_call(name, args, parsed, confirm=confirm, given=given)

    graph = build_loop(chat, tools, guard)
    if ctx is not None:
        ctx.progress(0, None, "tool-calling loop")
    final = graph.invoke({"messages": [("user", request)]}, {"recursion_limit": 3 * max_steps + 1})
    from langchain_core.messages import ToolMessage

    refused = {m.tool_call_id: m.artifact["refused"] for m in final["messages"]
               if isinstance(m, ToolMessage) and isinstance(m.artifact, dict) and "refused" in m.artifact}
    calls = [(by_lc.get(c["name"], c["name"]), c["args"]) for m in final["messages"]
             for c in (getattr(m, "tool_calls", None) or []) if c["id"] not in refused]
    last = final["messages"][-1]
    return {"answer": str(last.content), "calls": calls, "refused": list(refused.values()),
            "messages": final["messages"]}
