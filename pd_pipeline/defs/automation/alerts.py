"""Telling operators about trouble without their watching the UI: a post to a chat webhook.

One JSON body works for both Slack and Discord incoming webhooks (Slack reads `text`, Discord
`content`; each ignores the other's field). Posting never raises: a dead webhook is logged and
never fails a run or a sensor tick. Texts carry cardsets, cards and errors, never a credential.
"""

import json
import logging
import re
import urllib.request

log = logging.getLogger(__name__)

TIMEOUT_S = 10
MAX_CHARS = 1900  # Discord refuses content over 2,000 characters
_CREDENTIALS = re.compile(r"(\w+://)[^/\s:@]+:[^/\s@]+@")  # user:password@ in any URL


def redact(text: str) -> str:
    """The text with any URL's `user:password@` removed."""
    return _CREDENTIALS.sub(r"\1***@", text)


def payload(text: str) -> bytes:
    text = redact(text)
    if len(text) > MAX_CHARS:
        text = text[: MAX_CHARS - 1] + "…"
    return json.dumps({"text": text, "content": text}).encode()


def post(url: str | None, text: str, logger: logging.Logger | None = None) -> bool:
    """Post `text` to the webhook; False (and a warning) if there is none or it fails."""
    logger = logger or log
    if not url:
        return False
    request = urllib.request.Request(
        url, data=payload(text), headers={"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
            response.read()
        return True
    except Exception as e:  # the alert is best effort: whatever went wrong, say so and go on
        logger.warning(f"alert not delivered to the webhook: {type(e).__name__}: {redact(str(e))}")
        return False
