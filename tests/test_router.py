"""Router filters and composition (pure logic, no Redis)."""

from __future__ import annotations

import pytest

from greenq.core.contract import Envelope
from greenq.core.notification import Notification, unwrap
from greenq.workers.context import HandlerContext
from greenq.workers.handlers.builtin import all_sinks_router, default_router
from greenq.workers.router import Router, RouterError, load_router
from greenq.workers.state import NO_STATE
from tests.conftest import load_sample


def notification(name: str, type_message: str | None = None) -> Notification:
    data = load_sample(name)
    return Notification(data, data["typeWebhook"], type_message, Envelope(body="{}", source="webhook"))


def noop(notification: Notification, ctx: HandlerContext) -> None:
    """A handler that does nothing; routing tests only look at matches."""


TEXT = notification("incomingMessageReceived__textMessage.json", "textMessage")
IMAGE = notification("incomingMessageReceived__imageMessage.json", "imageMessage")
STATUS = notification("outgoingMessageStatus__sent-sendByApi.json")
CALL = notification("incomingCall__default.json")


@pytest.mark.parametrize(
    ("filters", "matching"),
    [
        ({}, {"text", "image", "status", "call"}),
        ({"type_webhook": "incomingMessageReceived"}, {"text", "image"}),
        ({"type_webhook": ["incomingCall", "outgoingMessageStatus"]}, {"status", "call"}),
        ({"type_message": "imageMessage"}, {"image"}),
        ({"chat": "71231234567@c.us"}, {"status"}),
        ({"chat": "79001234568@c.us"}, {"text", "image"}),
        ({"sender": "79001234500@c.us"}, {"call"}),
        ({"text": r"Green-API"}, {"text"}),
        ({"text": r"^Image$"}, {"image"}),
        ({"type_webhook": "incomingMessageReceived", "text": "nothing-like-this"}, set()),
    ],
)
def test_filters_select_notifications(filters: dict[str, object], matching: set[str]) -> None:
    router = Router()
    router.add(noop, **filters)  # type: ignore[arg-type]
    candidates = {"text": TEXT, "image": IMAGE, "status": STATUS, "call": CALL}

    matched = {name for name, item in candidates.items() if router.match(item)}

    assert matched == matching


def test_the_state_filter_matches_the_chat_s_current_state_name() -> None:
    router = Router()
    router.message(state=NO_STATE, name="fresh")(noop)
    router.message(state=["menu", "confirm"], name="busy")(noop)
    router.message(name="any")(noop)

    def names(state: str) -> list[str]:
        return [route.name for route in router.match(TEXT, state)]

    assert names(NO_STATE) == ["fresh", "any"]
    assert names("menu") == ["busy", "any"]
    assert names("confirm") == ["busy", "any"]
    assert names("elsewhere") == ["any"]
    assert [route.name for route in router.match(TEXT)] == ["fresh", "any"]  # no state given: none


def test_a_router_without_chat_state_refuses_state_filters() -> None:
    assert not default_router.chat_state  # the built-in sinks keep none: their batches skip reading it
    router = Router(chat_state=False)
    with pytest.raises(RouterError, match="chat_state=False"):
        router.message(state="menu", name="menu")(noop)
    stateful = Router()
    stateful.message(state="menu", name="menu")(noop)
    with pytest.raises(RouterError, match="chat_state=False"):
        router.include(stateful)


def test_all_matching_routes_run_in_order_and_include_appends() -> None:
    router = Router()

    @router.message(type_message="textMessage", name="first")
    def first(notification: Notification, ctx: HandlerContext) -> None: ...

    @router.on(name="second")
    def second(notification: Notification, ctx: HandlerContext) -> None: ...

    router.include(default_router)

    assert [route.name for route in router.match(TEXT)] == ["first", "second", "greenq.stream_sink"]
    assert [route.name for route in router.match(CALL)] == ["second", "greenq.stream_sink"]


def test_duplicate_handler_names_are_refused() -> None:
    router = Router()
    router.add(noop)

    with pytest.raises(RouterError, match="registered twice"):
        router.add(noop)


def test_including_a_router_twice_is_refused() -> None:
    router = Router()
    router.include(all_sinks_router)

    with pytest.raises(RouterError, match="registered twice"):
        router.include(default_router)


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("no-colon", "must look like"),
        ("missing.module.here:router", "cannot import"),
        ("greenq.workers.router:RouterError", "is not a greenq Router"),
    ],
)
def test_load_router_explains_what_is_wrong(path: str, message: str) -> None:
    with pytest.raises(RouterError, match=message):
        load_router(path)


def test_load_router_finds_the_builtin_default() -> None:
    assert load_router("greenq.workers.handlers.builtin:default_router") is default_router


def test_text_accessor_covers_captions_and_plain_text() -> None:
    assert TEXT.text == "I use Green-API to send this message to you!"
    assert IMAGE.text == "Image"
    assert CALL.text is None


@pytest.mark.parametrize("choice", ["interactiveButtonsResponse", "interactiveButtonsReply"])
def test_text_accessor_gives_the_title_of_a_chosen_interactive_button(choice: str) -> None:
    """A bot's ``text=`` routes see a button choice as the button's title (README: Writing a bot)."""
    data = load_sample("incomingMessageReceived__textMessage.json")
    data["messageData"] = {
        "typeMessage": choice,
        choice: {"stanzaId": "BAE5F4886F6F2D05", "selectedId": "yes", "selectedDisplayText": "Yes"},
    }
    assert (
        Notification(data, "incomingMessageReceived", choice, Envelope(body="{}", source="webhook")).text
        == "Yes"
    )


def test_unwrap_only_touches_the_pull_wrapper() -> None:
    wrapper = load_sample("receiveNotification-response__incomingMessageReceived_textMessage.json")
    plain = load_sample("incomingCall__default.json")

    assert unwrap(wrapper) == wrapper["body"]
    assert unwrap(plain) is plain
    assert unwrap([1]) == [1]
