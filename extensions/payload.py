"""The callout body Entitlement Management sends, as a typed model.

EM's Logic App trigger receives a flat PascalCase body; Graph's customExtensionCalloutRequest describes a
{type, source, data{...camelCase}} envelope. Both are accepted, keys case-insensitively, unknown fields ignored.
Docs: https://learn.microsoft.com/entra/id-governance/entitlement-management-logic-apps-integration and
https://learn.microsoft.com/graph/api/resources/accesspackageassignmentrequestcalloutdata
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

CONNECTION_TEST_STAGE = "CustomExtensionConnectionTest"
GUID_PATTERN = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"


def _alias(name: str) -> str:
    return name.replace("_", "").lower()


class _Model(BaseModel):
    model_config = ConfigDict(alias_generator=_alias, populate_by_name=True, extra="ignore", frozen=True)


class Reference(_Model):
    id: str | None = Field(None, max_length=100)
    object_id: Guid | None = None
    display_name: str | None = None


class Assignment(_Model):
    id: str | None = None
    state: str | None = None
    status: str | None = None
    target: Reference | None = None
    assignment_policy: Reference | None = None


class CallbackConfiguration(_Model):
    duration_before_timeout: str | None = None


KNOWN_STAGES = (
    "assignmentRequestCreated",
    "assignmentRequestApproved",
    "assignmentRequestGranted",
    "assignmentRequestRemoved",
    "assignmentFourteenDaysBeforeExpiration",
    "assignmentOneDayBeforeExpiration",
    CONNECTION_TEST_STAGE,
)
Guid = Annotated[str, StringConstraints(pattern=GUID_PATTERN)]


class CalloutPayload(_Model):
    stage: str = Field(min_length=1, max_length=100)
    custom_extension_stage_instance_id: Guid | None = None
    access_package_assignment_request_id: Guid | None = None
    callback_uri_path: str | None = None
    request_type: str | None = None
    state: str | None = None
    status: str | None = None
    access_package: Reference | None = None
    assignment: Assignment | None = None
    requestor: Reference | None = None
    callback_configuration: CallbackConfiguration | None = None

    @property
    def waits_for_resume(self) -> bool:
        """Launch-and-wait extensions send a callback configuration; launch-and-continue ones do not."""
        return self.callback_configuration is not None and bool(self.callback_configuration.duration_before_timeout)

    @field_validator("stage")
    @classmethod
    def _known_stage(cls, value: str) -> str:
        # EM spells stages in camelCase; PascalCase relays exist, so match case-insensitively.
        for known in KNOWN_STAGES:
            if value.lower() == known.lower():
                return known
        raise ValueError(f"unknown stage {value[:100]!r}")

    @property
    def is_connection_test(self) -> bool:
        return self.stage.lower() == CONNECTION_TEST_STAGE.lower()


def lower_keys(value: Any) -> Any:
    """The body with every object key lower-cased, so PascalCase and camelCase read alike."""
    if isinstance(value, dict):
        return {str(k).lower(): lower_keys(v) for k, v in value.items()}
    if isinstance(value, list):
        return [lower_keys(v) for v in value]
    return value


def parse_callout(body: Any) -> CalloutPayload:
    """Parse either shape; raises pydantic.ValidationError or ValueError saying what is wrong."""
    if not isinstance(body, dict):
        raise ValueError("the callout body must be a JSON object")
    lowered = lower_keys(body)
    if isinstance(lowered.get("data"), dict) and "stage" not in lowered:
        lowered = lowered["data"]
    return CalloutPayload.model_validate(lowered)
