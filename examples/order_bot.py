"""An order-taking WhatsApp bot on greenq: greeting -> menu (buttons) -> quantity -> confirm.

Run it against the GREEN API simulator, everything local, in one command (README: Writing a bot):

    scripts/up --simulator --router examples.order_bot:router

Each step is a route filtered by the chat's state (``state=``), so a chat's conversation survives worker
restarts and is shared by every worker replica. Replies go through the outbox (``ctx.reply``,
``ctx.send.buttons``): they are recorded with the batch's commit, so a retried batch never answers twice,
and the sender delivers them in order, at the instance's sending pace.
"""

from __future__ import annotations

from typing import Final

from greenq.core.notification import Notification
from greenq.workers.context import HandlerContext
from greenq.workers.router import Router
from greenq.workers.state import NO_STATE

#: What the bot sells: button id -> (name, price in cents).
MENU: Final = {"pizza": ("Pizza", 1200), "salad": ("Salad", 800), "soup": ("Soup", 600)}

#: Incoming messages that carry something a person typed or chose (a button reply arrives as one of these).
ANSWERS: Final = frozenset(
    {
        "textMessage",
        "extendedTextMessage",
        "buttonsResponseMessage",
        "templateButtonsReplyMessage",
        "interactiveButtonsResponse",
        "interactiveButtonsReply",
        "listResponseMessage",
    }
)

#: Matches any answer except ``cancel`` (every matching route runs, so the steps must not see a cancel).
NOT_CANCEL: Final = r"(?i)^(?!\s*/?cancel\b)"

router = Router()


def _answer(notification: Notification) -> str:
    """What the person typed or the title of the button they chose, normalized."""
    return (notification.text or "").strip().lower()


@router.message(type_message=ANSWERS, text=r"(?i)^\s*/?cancel\b", name="order_bot.cancel")
def cancel(notification: Notification, ctx: HandlerContext) -> None:
    """``cancel`` in any state ends the conversation."""
    if ctx.state.name != NO_STATE:
        ctx.state.clear()
        ctx.reply("Order cancelled. Write anything to start again.")


@router.message(type_message=ANSWERS, text=NOT_CANCEL, state=NO_STATE, name="order_bot.greet")
def greet(notification: Notification, ctx: HandlerContext) -> None:
    ctx.reply("Hi! I take orders. What would you like?")
    ctx.send.buttons(
        "Choose a dish:",
        [(key, f"{name} {price / 100:.2f}") for key, (name, price) in MENU.items()],
        footer="or write cancel",
    )
    ctx.state.set("menu")


@router.message(type_message=ANSWERS, text=NOT_CANCEL, state="menu", name="order_bot.menu")
def choose(notification: Notification, ctx: HandlerContext) -> None:
    answer = _answer(notification)
    dish = next((key for key, (name, _) in MENU.items() if answer.startswith((key, name.lower()))), None)
    if dish is None:
        ctx.reply(f"Sorry, we have {', '.join(name for name, _ in MENU.values())}.")
        return
    ctx.state.set("quantity", dish=dish)
    ctx.reply(f"How many {MENU[dish][0]}? (1-20)")


@router.message(type_message=ANSWERS, text=NOT_CANCEL, state="quantity", name="order_bot.quantity")
def quantity(notification: Notification, ctx: HandlerContext) -> None:
    answer = _answer(notification)
    if not answer.isdigit() or not 1 <= int(answer) <= 20:
        ctx.reply("Please answer with a number from 1 to 20.")
        return
    dish = str(ctx.state.get("dish"))
    name, price = MENU[dish]
    count = int(answer)
    ctx.state.set("confirm", dish=dish, count=count)
    ctx.send.buttons(
        f"{count} x {name}, {count * price / 100:.2f} in total. Confirm?",
        [("yes", "Yes"), ("no", "No")],
    )


@router.message(type_message=ANSWERS, text=NOT_CANCEL, state="confirm", name="order_bot.confirm")
def confirm(notification: Notification, ctx: HandlerContext) -> None:
    answer = _answer(notification)
    if answer not in ("yes", "no"):
        ctx.reply("Please answer yes or no.")
        return
    if answer == "no":
        ctx.state.set("menu")
        ctx.reply("No problem. What would you like instead?")
        return
    dish, count = str(ctx.state.get("dish")), int(ctx.state.get("count", 0))
    orders = int(ctx.state.get("orders", 0)) + 1
    ctx.reply(f"Order confirmed: {count} x {MENU[dish][0]}. Thank you! (order {orders} in this chat)")
    ctx.state.set(NO_STATE, orders=orders)
