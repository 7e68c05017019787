"""The notifications GREEN API emits about messages: what a send call becomes (outgoingAPIMessageReceived with
the messageData the real service writes for it, and outgoingMessageStatus), and an incoming text message for
the control API to inject. Shapes follow GREEN API's documented notification formats.
"""

from __future__ import annotations

import mimetypes
import re
from typing import Any, Final

#: File extensions GREEN API sends as a picture, a video or a voice/audio message; others are documents.
_FILE_KINDS: Final = {"image": "imageMessage", "video": "videoMessage", "audio": "audioMessage"}
_LINK: Final = re.compile(r"https?://", re.IGNORECASE)


def instance_data(id_instance: int, wid: str) -> dict[str, Any]:
    return {"idInstance": id_instance, "wid": wid, "typeInstance": "whatsapp"}


def message_data(method: str, body: dict[str, Any]) -> dict[str, Any]:
    """The messageData GREEN API reports for a message sent by ``method`` with ``body``."""
    quoted = body.get("quotedMessageId")
    if method == "sendMessage" and isinstance(quoted, str):
        reply = {"text": body["message"], "stanzaId": quoted}
        data = {"typeMessage": "quotedMessage", "extendedTextMessageData": reply}
    else:
        data = _BUILDERS[method](body)
    if isinstance(quoted, str):
        data["quotedMessage"] = {"stanzaId": quoted}
    return data


def _text(body: dict[str, Any]) -> dict[str, Any]:
    text = body["message"]
    if body.get("linkPreview", True) and _LINK.search(text):
        preview = {"text": text, "description": "", "title": "", "previewType": "None", "jpegThumbnail": ""}
        return {"typeMessage": "extendedTextMessage", "extendedTextMessageData": preview}
    return {"typeMessage": "textMessage", "textMessageData": {"textMessage": text}}


def _file(body: dict[str, Any]) -> dict[str, Any]:
    mime_type = mimetypes.guess_type(body["fileName"])[0] or "application/octet-stream"
    type_message = _FILE_KINDS.get(mime_type.partition("/")[0], "documentMessage")
    file = {
        "downloadUrl": body["urlFile"],
        "caption": body.get("caption", ""),
        "fileName": body["fileName"],
        "jpegThumbnail": "",
        "mimeType": mime_type,
    }
    return {"typeMessage": type_message, "fileMessageData": file}


def _location(body: dict[str, Any]) -> dict[str, Any]:
    location = {
        name: body[name] for name in ("latitude", "longitude", "nameLocation", "address") if name in body
    }
    return {"typeMessage": "locationMessage", "locationMessageData": {**location, "jpegThumbnail": ""}}


def _contact(body: dict[str, Any]) -> dict[str, Any]:
    contact = body["contact"]
    parts = [contact.get(name, "") for name in ("firstName", "middleName", "lastName")]
    name = " ".join(part for part in parts if part) or str(contact["phoneContact"])
    vcard = "\n".join(
        [
            "BEGIN:VCARD",
            "VERSION:3.0",
            "N:{};{};{};;".format(
                *(contact.get(part, "") for part in ("lastName", "firstName", "middleName"))
            ),
            f"FN:{name}",
            *([f"ORG:{contact['company']}"] if contact.get("company") else []),
            f"TEL;type=CELL;type=VOICE;waid={contact['phoneContact']}:+{contact['phoneContact']}",
            "END:VCARD",
        ]
    )
    return {"typeMessage": "contactMessage", "contactMessageData": {"displayName": name, "vcard": vcard}}


def _poll(body: dict[str, Any]) -> dict[str, Any]:
    poll = {
        "name": body["message"],
        "options": [{"optionName": option["optionName"]} for option in body["options"]],
        "multipleAnswers": body.get("multipleAnswers", False),
    }
    return {"typeMessage": "pollMessage", "pollMessageData": poll}


def _buttons_content(body: dict[str, Any]) -> dict[str, Any]:
    frame: dict[str, Any] = {name: body[name] for name in ("header", "body", "footer") if name in body}
    return {**frame, "buttons": [dict(button) for button in body["buttons"]]}


def _interactive(body: dict[str, Any]) -> dict[str, Any]:
    return {"typeMessage": "interactiveButtons", "interactiveButtons": _buttons_content(body)}


def _interactive_reply(body: dict[str, Any]) -> dict[str, Any]:
    buttons = _buttons_content(body)
    buttons["buttons"] = [{"type": "reply", **button} for button in buttons["buttons"]]
    return {"typeMessage": "interactiveButtonsReply", "interactiveButtonsReply": buttons}


_BUILDERS: Final = {
    "sendMessage": _text,
    "sendFileByUrl": _file,
    "sendLocation": _location,
    "sendContact": _contact,
    "sendPoll": _poll,
    "sendInteractiveButtons": _interactive,
    "sendInteractiveButtonsReply": _interactive_reply,
}


def api_message_received(
    ids: tuple[int, str], id_message: str, method: str, body: dict[str, Any], timestamp: int
) -> dict[str, Any]:
    """outgoingAPIMessageReceived for a sent message; ``ids`` is (idInstance, the instance's wid)."""
    sender = {"chatId": body["chatId"], "chatName": "", "sender": ids[1], "senderName": ""}
    return _message_notification(
        "outgoingAPIMessageReceived", ids, id_message, timestamp, (sender, message_data(method, body))
    )


def message_status(
    ids: tuple[int, str],
    id_message: str,
    chat_id: str,
    status: str,
    *,
    timestamp: int,
    description: str | None = None,
) -> dict[str, Any]:
    """outgoingMessageStatus of a message sent through the API."""
    notification: dict[str, Any] = {
        "typeWebhook": "outgoingMessageStatus",
        "chatId": chat_id,
        "instanceData": instance_data(*ids),
        "timestamp": timestamp,
        "idMessage": id_message,
        "status": status,
        "sendByApi": True,
    }
    if description is not None:
        notification["description"] = description
    return notification


def incoming_text(
    ids: tuple[int, str], id_message: str, chat_id: str, text: str, *, people: tuple[str, str], timestamp: int
) -> dict[str, Any]:
    """incomingMessageReceived of a text message; ``people`` is (sender id, sender name)."""
    sender, name = people
    sender_data = {"chatId": chat_id, "chatName": name, "sender": sender, "senderName": name}
    message = {"typeMessage": "textMessage", "textMessageData": {"textMessage": text}}
    return _message_notification(
        "incomingMessageReceived", ids, id_message, timestamp, (sender_data, message)
    )


def _message_notification(
    type_webhook: str,
    ids: tuple[int, str],
    id_message: str,
    timestamp: int,
    data: tuple[dict[str, Any], dict[str, Any]],
) -> dict[str, Any]:
    """A message notification's envelope; ``data`` is (senderData, messageData)."""
    sender_data, message = data
    return {
        "typeWebhook": type_webhook,
        "instanceData": instance_data(*ids),
        "timestamp": timestamp,
        "idMessage": id_message,
        "senderData": sender_data,
        "messageData": message,
    }
