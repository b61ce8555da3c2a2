"""Reply to a buyer in a Vinted conversation. A reply sent twice is a duplicate message the buyer sees,
so one whose answer was lost is never sent again: the job fails saying it may have been sent."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

from crosslist.marketplaces import Marketplace
from crosslist.marketplaces.vinted.publish import VintedId
from crosslist.marketplaces.vinted.replies import check, parse
from crosslist.realtime.messages import PluginCommand
from crosslist.workflows.base import (
    Completion,
    JobContext,
    JsonDict,
    PluginCall,
    ProductSnapshot,
    Reply,
    Step,
    StepAction,
    StepFailed,
    parse_params,
)

REPLIES_PATH = "/api/v2/conversations/{conversation_id}/replies"
MAX_BODY = 2000


class MessageParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    conversation_id: str = Field(pattern=r"^[0-9]{1,20}$", description="Vinted's conversation id (digits)")
    body: str = Field(max_length=MAX_BODY)

    @field_validator("conversation_id", mode="before")
    @classmethod
    def _digits(cls, value: object) -> object:
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value

    @field_validator("body")
    @classmethod
    def _not_blank(cls, body: str) -> str:
        if not body.strip():
            raise ValueError("the message is empty")
        return body


class _Sent(BaseModel):
    id: VintedId


class _SentReply(BaseModel):
    reply: _Sent


class VintedMessage:
    marketplace: Marketplace = "vinted"
    action = "message"

    def prepare(self, product: ProductSnapshot | None, params: JsonDict | None = None) -> JsonDict:
        return parse_params(MessageParams, params, "a Vinted message needs params {conversation_id, body}").model_dump()

    def steps(self, job_input: JsonDict) -> list[Step]:
        return [Step("send_reply", "Sending your message", kind="send_reply")]

    def plan(self, step: Step, context: JobContext) -> PluginCall:
        payload = {
            "reply": {
                "body": context.input["body"],
                "photo_temp_uuids": None,
                "is_personal_data_sharing_check_skipped": False,
            }
        }
        command = PluginCommand(method="POST", path=_path(context), payload=payload)
        return PluginCall(command, kind="write")  # not repeatable: the buyer would read it twice

    def apply(self, step: Step, context: JobContext, reply: Reply) -> JsonDict:
        check(reply)
        sent = parse(_SentReply, reply, _path(context))
        return {"reply_id": str(sent.reply.id)}

    def verify(self, step: Step, context: JobContext) -> StepAction | None:
        raise StepFailed(
            "message_unconfirmed",
            "Your message may have been sent, but Vinted's answer never came back. Open the conversation on "
            "Vinted to check before sending it again.",
            kind="permanent",
        )

    def verified(self, step: Step, context: JobContext, reply: Reply) -> JsonDict | None:
        return None

    def complete(self, context: JobContext) -> Completion:
        return Completion(
            result={"conversation_id": context.input["conversation_id"], "reply_id": context.accumulated["reply_id"]}
        )


def _path(context: JobContext) -> str:
    return REPLIES_PATH.format(conversation_id=context.input["conversation_id"])
