"""Talk to a bot running on ``scripts/up --simulator`` from this terminal, as one WhatsApp chat.

    .venv/bin/python -m examples.chat --simulator http://127.0.0.1:8090 --instance 1101000001

Each line you type becomes an incoming text message in the simulator (its control route ``/incoming``),
which the simulator delivers to greenq's webhook like GREEN API would; every message the bot's replies made
the simulator send to this chat is printed as it goes out. Ctrl-D or Ctrl-C ends it.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from typing import Any

import httpx2

#: How often the sent-message log is read for new replies.
POLL_SECONDS = 0.3


def _describe(message: dict[str, Any]) -> str:
    """A sent message as one line: its text, or its kind and the visible parts."""
    body = message.get("body", {})
    if "message" in body:
        return str(body["message"])
    if "buttons" in body:
        buttons = " | ".join(str(button.get("buttonText")) for button in body["buttons"])
        return f"{body.get('body', '')}  [{buttons}]"
    return f"({message.get('type')}) {body}"


def _print_replies(http: httpx2.Client, url: str, chat: str, stop: threading.Event) -> None:
    printed = 0
    while not stop.wait(POLL_SECONDS):
        try:
            sent = http.get(url).raise_for_status().json()
        except httpx2.HTTPError as error:
            print(f"(simulator unreachable: {type(error).__name__})", file=sys.stderr)
            continue
        mine = [message for message in sent if message.get("body", {}).get("chatId") == chat]
        for message in mine[printed:]:
            print(f"bot> {_describe(message)}", flush=True)
        printed = len(mine)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--simulator", default="http://127.0.0.1:8090", help="the simulator's URL")
    parser.add_argument("--instance", type=int, default=1101000001, help="idInstance")
    parser.add_argument("--chat", default="79001234567@c.us", help="your chat id")
    args = parser.parse_args()
    base = f"{args.simulator.rstrip('/')}/sim/instances/{args.instance}"
    stop = threading.Event()
    with httpx2.Client(trust_env=False, timeout=10) as http:
        printer = threading.Thread(
            target=_print_replies, args=(http, f"{base}/sent", args.chat, stop), daemon=True
        )
        printer.start()
        print(f"you are {args.chat}; type a message (Ctrl-D ends)", flush=True)
        try:
            for line in sys.stdin:
                if line.strip():
                    http.post(f"{base}/incoming", json={"chatId": args.chat, "text": line.strip()})
        except KeyboardInterrupt:
            pass
        time.sleep(POLL_SECONDS * 2)  # the last replies, if they are already out
        stop.set()
    return 0


if __name__ == "__main__":
    sys.exit(main())
