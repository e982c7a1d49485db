"""The tool-calling agent: a LangGraph loop (model → tools → model ...) over registry tools.

Works with any LangChain chat model that supports ``bind_tools``; ``openai:ENDPOINT#MODEL``
builds a ``ChatOpenAI`` (package ``langchain-openai``, not installed by default). Tool errors
come back to the model as error messages (``ToolNode`` with ``handle_tool_errors``) instead of
crashing the loop.
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


def build_loop(chat_model: Any, tools: list[Any]) -> Any:
    """Compile the loop: ``agent`` calls the model, ``tools`` runs its tool calls, until no call is made."""
    from langchain_core.messages import SystemMessage
    from langgraph.graph import END, START, MessagesState, StateGraph
    from langgraph.prebuilt import ToolNode, tools_condition

    bound = chat_model.bind_tools(tools)

    def agent(state: MessagesState) -> dict[str, Any]:
        return {"messages": [bound.invoke([SystemMessage(SYSTEM), *state["messages"]])]}

    g = StateGraph(MessagesState)
    g.add_node("agent", agent)
    g.add_node("tools", ToolNode(tools, handle_tool_errors=True))
    g.add_edge(START, "agent")
    g.add_conditional_edges("agent", tools_condition, {"tools": "tools", END: END})
    g.add_edge("tools", "agent")
    return g.compile()


def run_tool_loop(model: Any, request: str, names: list[str], ctx: Context | None = None,
                  *, max_steps: int = 8) -> dict[str, Any]:
    """Run the loop for ``request`` over registry tools ``names``.

    Returns ``{"answer": str, "calls": [(tool name, args), ...], "messages": [...]}``.
    """
    import vltools
    from vltools.core.registry import get_registry

    chat = chat_model_from_spec(model) if isinstance(model, str) else model
    tools = vltools.as_langchain_tools(names=names)
    by_lc = {t.name: get_registry().spec(t.name).name for t in tools}
    graph = build_loop(chat, tools)
    if ctx is not None:
        ctx.progress(0, None, "tool-calling loop")
    final = graph.invoke({"messages": [("user", request)]}, {"recursion_limit": 2 * max_steps + 1})
    calls = [(by_lc.get(c["name"], c["name"]), c["args"]) for m in final["messages"]
             for c in (getattr(m, "tool_calls", None) or [])]
    last = final["messages"][-1]
    return {"answer": str(last.content), "calls": calls, "messages": final["messages"]}
