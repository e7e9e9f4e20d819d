"""Post a change-health report: the figures as a message, the chart as a file in its thread.

The chart goes up through Slack's external upload flow (files.getUploadURLExternal, a POST of
the bytes to the returned URL, files.completeUploadExternal), which slack_sdk's
`files_upload_v2` runs; the old files.upload is retired. It needs the `files:write` scope.
"""

from __future__ import annotations

import logging
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.domain.change_health import ChangeHealth
from bot.domain.change_health_words import headline, report_lines
from bot.domain.fleet import FleetLayout
from bot.reports.chart import chart_png
from bot.slack.render import (
    FALLBACK_LIMIT,
    SlackMessage,
    clip,
    context_block,
    escape,
    header_block,
    section_blocks,
)

log = logging.getLogger(__name__)


def report_message(report: ChangeHealth, scheduled: bool = True) -> SlackMessage:
    """The key fact in the header, each figure on its own line; `scheduled` for the weekly
    post (its chart follows in the thread)."""
    blocks: list[Any] = [header_block(headline(report))]
    # Slack trims leading spaces: indented list items become bullets.
    lines = [
        "• " + escape(line.strip()) if line.startswith("  ") else escape(line)
        for line in report_lines(report)
    ]
    blocks += section_blocks(lines)
    blocks.append(
        context_block(
            "A change is a new revision fetched by a source or a new chart version; it failed "
            "when a Kustomization or HelmRelease of its cluster failed before the next change "
            "(within 24 h). "
            + (
                "The chart is in the thread."
                if scheduled
                else "The chart comes with the weekly report, or `fluxbot report ENV -o png`."
            )
        )
    )
    text = headline(report)
    return SlackMessage(clip(text, FALLBACK_LIMIT), [b.to_dict() for b in blocks])


class SlackReportPoster:
    """Posts reports to their environment's channel."""

    def __init__(self, client: WebClient, layout: FleetLayout) -> None:
        self._client = client
        self._layout = layout

    def post(self, report: ChangeHealth) -> str:
        """Post the report and upload its chart in the thread; returns the message's ts."""
        env = self._layout.environment(report.environment)
        if env is None or not env.channel:
            raise ValueError(f"environment {report.environment!r} has no channel")
        message = report_message(report)
        response = self._client.chat_postMessage(
            channel=env.channel, text=message.text, blocks=message.blocks, unfurl_links=False
        )
        ts = str(response["ts"])
        try:
            self._client.files_upload_v2(
                channel=env.channel,
                thread_ts=ts,
                file=chart_png(report),
                filename=f"change-health-{report.environment}.png",
                title=f"{report.environment}: failures and recoveries per day, four weeks",
                alt_txt=(
                    f"Bar chart of failures and recoveries per day in {report.environment} "
                    "over the last four weeks"
                ),
            )
        except SlackApiError as err:
            # The figures are out; posting them again would double them. Say so loudly instead.
            log.error(
                "report %s posted, but its chart could not be uploaded: %s",
                report.environment,
                err.response.get("error"),
            )
        return ts
