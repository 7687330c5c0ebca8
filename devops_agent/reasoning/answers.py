"""The shapes the model answers in, and their tool / JSON-schema forms.

They mirror the state's Diagnosis and Plan but leave out what the agent decides itself (the
reasoner, the risk of each step, whether approval is needed).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import BaseModel, ConfigDict, Field

from devops_agent.state import Category


class DiagnosisAnswer(BaseModel):
    """Submit the diagnosis: the category, the root cause, a confidence and the evidence."""

    model_config = ConfigDict(extra="ignore")
    category: Category = Field(description="exactly one of the categories listed")
    root_cause: str = Field(
        min_length=1, max_length=1000, description="one or two sentences naming the cause"
    )
    confidence: float = Field(ge=0.0, le=1.0, description="0 to 1: how sure the evidence makes you")
    evidence: list[str] = Field(
        default_factory=list,
        max_length=20,
        description="observations quoted exactly from the data that support the diagnosis",
    )


class StepAnswer(BaseModel):
    model_config = ConfigDict(extra="forbid")
    operation: str = Field(description="an operation of the registry, by its name")
    target: str = Field(description="the service it acts on")
    params: dict[str, Any] = Field(
        default_factory=dict, description="the operation's parameters (besides target)"
    )
    rationale: str = Field("", max_length=500)


class PlanAnswer(BaseModel):
    """Submit the plan: remediate with steps, take no action, or escalate to a person."""

    model_config = ConfigDict(extra="ignore")
    action: Literal["remediate", "no_action", "escalate"]
    steps: list[StepAnswer] = Field(default_factory=list, max_length=10)
    workflow: str | None = Field(
        None,
        max_length=64,
        description="instead of steps: the id of a workflow of the catalog, whose next phase runs",
    )
    why: str = Field(min_length=1, max_length=1000)
    confidence: float = Field(ge=0.0, le=1.0)


@dataclass(frozen=True)
class AnswerSpec:
    """One answer shape, as a tool (function calling) and as a response format (JSON schema)."""

    model: type[BaseModel]
    tool_name: str
    tool: dict[str, Any]
    response_format: dict[str, Any]

    @classmethod
    def of(cls, model: type[BaseModel], tool_name: str, format_name: str) -> AnswerSpec:
        tool = convert_to_openai_tool(model)
        tool["function"]["name"] = tool_name
        function = tool["function"]
        response_format = {
            "type": "json_schema",
            "json_schema": {
                "name": format_name,
                "description": function.get("description", ""),
                "schema": function["parameters"],
            },
        }
        return cls(model, tool_name, tool, response_format)

    @property
    def schema_text(self) -> str:
        return json.dumps(self.tool["function"]["parameters"], separators=(",", ":"))


DIAGNOSIS = AnswerSpec.of(DiagnosisAnswer, "submit_diagnosis", "diagnosis")
PLAN = AnswerSpec.of(PlanAnswer, "submit_plan", "plan")
