"""Incidents in Slack: render one incident as a message, post and edit it within rate limits.

The message leads with the key fact (what is failing, where, for how long), then the latest
error condensed, what fails because of it, the last action, and the remediation buttons that
apply (the same signed buttons as status answers, from the same `ButtonSource`). Resolved or
snoozed, it says so in place and its buttons go. Thread replies carry re-announcements, snoozes
and resolutions; actions taken from its buttons report in the same thread (see
`SlackPresenter`'s audit reply).

Pacing follows Slack's published limits: chat.postMessage about one message per second per
channel (short bursts allowed), chat.update Tier 3 (about 50 a minute). A 429 that outlasts
the client's own retries becomes `RetryLater` with Slack's Retry-After, and the incident
worker tries again after it.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Final, Protocol

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.models.blocks import (
    ActionsBlock,
    ButtonElement,
    ContextBlock,
    MarkdownTextObject,
    SectionBlock,
)

from bot.domain.incidents import IncidentState
from bot.domain.status import FluxObject
from bot.incidents.planner import IncidentView, describe_age, title
from bot.incidents.service import MessageGone, Posted, RetryLater
from bot.slack.render import ButtonSource, SlackMessage, clip, escape

log = logging.getLogger(__name__)

POST_RATE: Final = 0.9
"""chat.postMessage: about one message per second per channel, as Slack documents; a little
under, since calls arrive at Slack with jittered latency."""
POST_BURST: Final = 3.0
UPDATE_RATE: Final = 50 / 60
"""chat.update is Tier 3: about 50 calls a minute."""
UPDATE_BURST: Final = 20.0
REFUSED_RETRY: Final = 60.0
"""Seconds before trying again a call Slack refused (not rate limited)."""
MAX_DEPENDENTS: Final = 10
MAX_BUTTONS: Final = 24  # an actions block holds 25 elements
BLOCK_PREFIX: Final = "incident:"


class IncidentButtons(ButtonSource, Protocol):
    """The status renderer's buttons, plus Snooze… (as digests offer it)."""

    def snooze(self, environment: str, cluster: str, obj: FluxObject) -> ButtonElement:
        """A button offering to hide the object for a while."""
        ...


class _Bucket:
    """A token bucket: `rate` calls a second, up to `burst` at once."""

    def __init__(self, rate: float, burst: float) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = burst
        self.updated = time.monotonic()

    def take(self) -> float:
        """Take a token; how long to sleep first (0 when one was there)."""
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        self.tokens -= 1
        return 0.0 if self.tokens >= 0 else -self.tokens / self.rate


def _ref(obj: FluxObject) -> str:
    return f"{escape(obj.kind)} `{escape(obj.namespace)}/{escape(obj.name)}`"


def render_incident(view: IncidentView, buttons: IncidentButtons | None) -> SlackMessage:
    """The incident's top-level message as it should look now."""
    record = view.record
    root = view.root
    where = f"*{escape(record.cluster)}* ({escape(record.environment)})"
    what = (
        f"Cluster {where} cannot be read"
        if record.is_cluster
        else f"*{escape(record.kind)}* `{escape(record.namespace)}/{escape(record.name)}` "
        f"on {where}"
    )
    age = describe_age(view.age)
    if record.state is IncidentState.OPEN:
        headline = (
            f":rotating_light: {what}, for {age}"
            if record.is_cluster
            else f":rotating_light: {what} failing for {age}"
        )
    elif record.state is IncidentState.SNOOZED:
        headline = f":zzz: {what}: {escape(record.outcome)}"
    else:
        by = f" by {escape(record.outcome)}" if record.outcome else ""
        headline = f":white_check_mark: Resolved after {age}{by}: {what}"
    lines = [headline]
    if record.state is IncidentState.OPEN and view.mention:
        lines[0] += f" <!subteam^{view.mention}>"
    if view.error:
        lines.append("> " + escape(view.error))
    blocks: list[dict[str, Any]] = [
        SectionBlock(text=MarkdownTextObject(text=clip("\n".join(lines), 3000))).to_dict()
    ]
    details: list[str] = []
    if view.dependents and record.state is IncidentState.OPEN:
        shown = ", ".join(_ref(o) for o in view.dependents[:MAX_DEPENDENTS])
        more = len(view.dependents) - MAX_DEPENDENTS
        rest = f" and {more} more" if more > 0 else ""
        count = len(view.dependents)
        details.append(f"{count} failing because of it: {shown}{rest}")
    if record.is_cluster and record.state is IncidentState.OPEN:
        details.append("Its objects are shown as last known until it answers again.")
    if record.flaps:
        times = "once" if record.flaps == 1 else f"{record.flaps} times"
        details.append(f"Recovered and failed again {times}.")
    if view.last_action and record.state is IncidentState.OPEN:
        details.append(f"Last action: {escape(view.last_action)}")
    if details:
        blocks.append(
            SectionBlock(text=MarkdownTextObject(text=clip("\n".join(details), 3000))).to_dict()
        )
    if record.state is IncidentState.OPEN and root is not None and buttons is not None:
        elements = buttons.actions(record.environment, record.cluster, root)[: MAX_BUTTONS - 1]
        elements.append(buttons.snooze(record.environment, record.cluster, root))
        blocks.append(
            ActionsBlock(elements=elements, block_id=f"{BLOCK_PREFIX}{record.id}"[:255]).to_dict()
        )
    # Slack shows the date in each reader's time zone; the fallback is UTC.
    stamp = int(record.failing_since.timestamp())
    fallback_date = f"{record.failing_since:%Y-%m-%d %H:%M} UTC"
    since = f"<!date^{stamp}^{{date_short_pretty}} {{time}}|{fallback_date}>"
    context = f"Incident · failing since {since}"
    if record.state is IncidentState.RESOLVED and record.resolved_at is not None:
        end = record.resolved_at
        until = f"<!date^{int(end.timestamp())}^{{time}}|{end:%Y-%m-%d %H:%M} UTC>"
        context = f"Incident · failed from {since} to {until}"
    blocks.append(ContextBlock(elements=[MarkdownTextObject(text=context)]).to_dict())
    text = _plain(headline)
    if record.state is IncidentState.OPEN and view.mention:
        # Slack notifies from the top-level text: the group is pinged through it.
        text += f" <!subteam^{view.mention}>"
    return SlackMessage(clip(text, 3000), blocks)


def _plain(text: str) -> str:
    """The headline as notification text: no emoji code, no mrkdwn marks."""
    for mark in (":rotating_light: ", ":white_check_mark: ", ":zzz: ", "*", "`"):
        text = text.replace(mark, "")
    return text


class SlackIncidentPublisher:
    """Posts and edits incident messages with a Web API client, within Slack's limits."""

    def __init__(self, client: WebClient, buttons: IncidentButtons | None) -> None:
        self._client = client
        self._buttons = buttons
        self._lock = threading.Lock()
        self._posts: dict[str, _Bucket] = {}
        self._updates = _Bucket(UPDATE_RATE, UPDATE_BURST)

    def post(self, view: IncidentView) -> Posted:
        """Post a new incident message and fetch its permalink."""
        message = render_incident(view, self._buttons)
        channel = view.record.channel
        self._pace_post(channel)
        response = self._call(
            "chat.postMessage",
            lambda: self._client.chat_postMessage(
                channel=channel, text=message.text, blocks=message.blocks, unfurl_links=False
            ),
        )
        ts = str(response["ts"])
        permalink = ""
        try:
            link = self._client.chat_getPermalink(channel=channel, message_ts=ts)
            permalink = str(link.get("permalink") or "")
        except SlackApiError as err:
            # The message is out; a missing link only makes `/flux incidents` less handy.
            log.warning("incidents: no permalink for %s: %s", ts, err.response.get("error"))
        return Posted(ts, permalink)

    def update(self, view: IncidentView) -> None:
        """Edit the incident's message in place."""
        message = render_incident(view, self._buttons)
        record = view.record
        with self._lock:
            wait = self._updates.take()
        if wait:
            time.sleep(wait)
        self._call(
            "chat.update",
            lambda: self._client.chat_update(
                channel=record.channel, ts=record.message_ts, text=message.text,
                blocks=message.blocks,
            ),
        )  # fmt: skip

    def note(self, view: IncidentView, text: str, mention: bool) -> None:
        """Reply in the incident's thread."""
        record = view.record
        ping = f"<!subteam^{view.mention}> " if mention and view.mention else ""
        body = clip(f"{ping}{escape(title(record))}: {escape(text)}", 3000)
        self._pace_post(record.channel)
        self._call(
            "chat.postMessage",
            lambda: self._client.chat_postMessage(
                channel=record.channel, thread_ts=record.message_ts, text=body
            ),
        )

    def _pace_post(self, channel: str) -> None:
        with self._lock:
            bucket = self._posts.setdefault(channel, _Bucket(POST_RATE, POST_BURST))
            wait = bucket.take()
        if wait:
            time.sleep(wait)

    @staticmethod
    def _call(method: str, call: Any) -> Any:
        try:
            return call()
        except SlackApiError as err:
            status = err.response.status_code
            if status == 429:
                headers = {k.lower(): v for k, v in (err.response.headers or {}).items()}
                after = float(headers.get("retry-after") or 1)
                raise RetryLater(after, f"{method} rate limited") from err
            if status >= 500:
                raise RetryLater(5.0, f"{method} failed with HTTP {status}") from err
            error = str(err.response.get("error") or "")
            if method == "chat.update" and error == "message_not_found":
                raise MessageGone(error) from err
            # channel_not_found, not_in_channel, invalid_auth…: an operator has to act; try
            # again now and then rather than at every tick.
            raise RetryLater(REFUSED_RETRY, f"{method} refused: {error}") from err
        except OSError as err:
            raise RetryLater(5.0, f"{method}: {err}") from err
