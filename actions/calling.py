"""Gemini's answer with the business's functions: its tools called and answered, choices offered.

Each round that ends in function calls sends the model's content back exactly as it came (ids
and thought signatures included) with one response per call, and Gemini goes on. At most
MAX_TOOL_CALLS calls per answer; then one more request with function calling off (`NONE`)
makes it answer in words. `transfer_to_human` and `offer_choices` end the rounds: the caller
hands over, or sends the choices. The business's functions are its HTTP tools and the tools its
MCP servers list (actions/mcp_tools.py), called alike.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from actions.calls import ToolCaller, ToolResult
from actions.choices import OFFER_CHOICES, Choices, choices_of, offer_choices_tool
from actions.choices import PROMPT_HINT as CHOICES_HINT
from actions.mcp_tools import McpTool, McpTools
from domain.businesses import Business
from domain.tool_schemas import declared_schema
from domain.tools import HttpTool
from domain.types import ToolCallRecord, Turn
from gemini.requests import TRANSFER_TO_HUMAN, Inline
from gemini.responses import FunctionCall
from hours.schedule import Clock, system_clock
from hours.words import instruction
from llm import Answer, Gemini, LLMError

if TYPE_CHECKING:
    from google.genai import types

MAX_TOOL_CALLS = 5
TOO_MANY = "no more function calls for this answer: answer the customer with what you have"


@dataclass(frozen=True, slots=True)
class Acted:
    """An answer after every round: the last round's, with the tokens of all of them; the
    business's tools it called; the choices it offers, if it offers some."""

    answer: Answer
    tool_calls: tuple[ToolCallRecord, ...] = ()
    choices: Choices | None = None


def tool_declaration(tool: HttpTool | McpTool) -> types.FunctionDeclarationDict:
    return {
        "name": tool.name,
        "description": tool.description,
        "parameters": declared_schema(tool.parameters),  # type: ignore[typeddict-item]
    }


def function_response(call: FunctionCall, response: dict[str, Any]) -> types.PartDict:
    """One call's response, under its name and id."""
    answered: types.FunctionResponseDict = {"name": call.name, "response": response}
    if call.id:
        answered["id"] = call.id
    return {"function_response": answered}


class FunctionCalling:
    """Where the pipeline asks Gemini: one request, or several while Gemini calls functions."""

    def __init__(
        self,
        *,
        gemini: Gemini,
        caller: ToolCaller | None,
        interactive: bool,
        handoff: bool,
        clock: Clock = system_clock,
        mcp: McpTools | None = None,
    ) -> None:
        self._gemini = gemini
        self._caller = caller
        self._mcp = mcp
        self._interactive = interactive
        self._handoff = handoff
        self._clock = clock
        self._declared: dict[str, types.ToolDict] = {}

    def _functions(self, business: Business) -> list[types.ToolDict]:
        if business.name not in self._declared and business.tools:
            declarations = [tool_declaration(tool) for tool in business.tools]
            self._declared[business.name] = {"function_declarations": declarations}
        functions = [self._declared[business.name]] if business.tools else []
        return [*functions, offer_choices_tool()] if self._interactive else functions

    def instructions(
        self,
        business: Business,
        prompt: str,
        tools: Sequence[types.ToolDict],
        remote: Sequence[McpTool] = (),
    ) -> tuple[str, list[types.ToolDict]]:
        """The prompt with the business's time and hours (and how to offer choices), the
        tools with the business's own functions (and those of its MCP servers)."""
        prompt = f"{prompt}\n\n{instruction(business.hours, self._clock())}"
        if self._interactive:
            prompt = f"{prompt}\n\n{CHOICES_HINT}"
        functions = self._functions(business)
        if remote:
            functions.append({"function_declarations": [tool_declaration(t) for t in remote]})
        return prompt, [*tools, *functions]

    async def answer(
        self,
        business: Business,
        customer: str,
        prompt: str,
        history: Sequence[Turn],
        message: str,
        *,
        max_output_tokens: int,
        attachments: Sequence[Inline] = (),
        tools: Sequence[types.ToolDict] = (),
        before: Sequence[tuple[str, Sequence[Inline]]] = (),
    ) -> Acted:
        """Gemini's answer for `customer` (the webhook's sender, the only one the business's
        API hears of), calling the business's tools as it asks; `LLMError` as Gemini's own."""
        remote = await self._mcp.tools(business) if self._mcp and business.mcp else ()
        prompt, declared = self.instructions(business, prompt, tools, remote)
        by_name: dict[str, HttpTool | McpTool] = {tool.name: tool for tool in remote}
        by_name.update((tool.name, tool) for tool in business.tools)
        followups: list[types.ContentUnionDict] = []
        records: list[ToolCallRecord] = []
        calls_answered = 0
        total: Answer | None = None
        while True:
            last_round = calls_answered >= MAX_TOOL_CALLS
            try:
                answer = await self._gemini.generate(
                    prompt,
                    history,
                    message,
                    max_output_tokens=max_output_tokens,
                    attachments=attachments,
                    tools=declared,
                    followups=followups,
                    calling="NONE" if last_round else None,
                    before=before,
                )
            except LLMError as exc:  # the rounds before were billed all the same
                if total is None:
                    raise
                raise LLMError(exc.reason, total.use + exc.use) from exc
            total = answer if total is None else total + answer
            if last_round or not answer.function_calls or answer.content is None:
                return Acted(total, tuple(records))
            if self._handoff and answer.called(TRANSFER_TO_HUMAN):
                return Acted(total, tuple(records))
            offered = answer.called(OFFER_CHOICES) if self._interactive else None
            choices = choices_of(offered.args) if offered is not None else None
            if isinstance(choices, Choices):
                return Acted(replace(total, text=choices.as_text()), tuple(records), choices)
            responses = await self._respond(
                answer.function_calls, by_name, customer, business.name, calls_answered, records
            )
            calls_answered += len(responses)
            followups += [answer.content, {"role": "user", "parts": responses}]

    async def _respond(
        self,
        calls: Sequence[FunctionCall],
        by_name: dict[str, HttpTool | McpTool],
        customer: str,
        business: str,
        calls_answered: int,
        records: list[ToolCallRecord],
    ) -> list[types.PartDict]:
        """One response per call, in order; the business's tools called at once, within the
        limit of calls per answer."""
        pending: dict[int, Coroutine[Any, Any, ToolResult]] = {}
        responses: dict[int, dict[str, Any]] = {}
        for index, call in enumerate(calls):
            tool = by_name.get(call.name)
            if calls_answered + index >= MAX_TOOL_CALLS:
                responses[index] = {"error": TOO_MANY}
            elif isinstance(tool, McpTool) and self._mcp is not None:
                pending[index] = self._mcp.call(
                    tool, call.args, customer=customer, business=business
                )
            elif isinstance(tool, HttpTool) and self._caller is not None:
                pending[index] = self._caller.call(
                    tool, call.args, customer=customer, business=business
                )
            elif call.name == OFFER_CHOICES and self._interactive:
                problem = choices_of(call.args)
                responses[index] = {"error": problem if isinstance(problem, str) else "invalid"}
            else:
                responses[index] = {"error": f"there is no function named {call.name!r}"}
        results = await asyncio.gather(*pending.values())
        for index, result in zip(pending, results, strict=True):
            records.append(result.record)
            responses[index] = result.response
        return [function_response(call, responses[i]) for i, call in enumerate(calls)]
