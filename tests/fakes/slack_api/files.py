"""Slack's external file upload flow (docs.slack.dev/messaging/working-with-files).

1. files.getUploadURLExternal(filename, length) -> upload_url, file_id
2. POST the bytes to upload_url (raw body or multipart) -> 200 "OK - <length>"
3. files.completeUploadExternal(files=[{id, title}], channel_id, initial_comment, thread_ts)
   shares the file: without channel_id it stays private.

files.upload was retired (November 2025): it answers `method_deprecated`.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from aiohttp import web

from .records import _SlackError


class Files:
    """Uploaded files (a mixin of FakeSlack)."""

    def uploads(self) -> list[dict[str, Any]]:
        """Files uploaded through the external upload flow, oldest first: `id`, `filename`,
        `length` (declared), `data` (the bytes received, None until step 2), `title`,
        `completed`, `channel` and `thread_ts` (where completeUploadExternal shared it)."""
        with self._lock:
            return [copy.deepcopy(u) for u in self._uploads.values()]

    def _files_get_upload_url_external(self, params: dict[str, Any]) -> dict[str, Any]:
        filename = params.get("filename")
        length = params.get("length")
        if not filename or length in (None, ""):
            raise _SlackError("invalid_arguments")
        try:
            size = int(length)
        except (TypeError, ValueError):
            raise _SlackError("invalid_arguments") from None
        file_id = f"F{next(self._counter):08d}"
        self._uploads[file_id] = {
            "id": file_id,
            "filename": str(filename),
            "length": size,
            "alt_txt": params.get("alt_txt"),
            "data": None,
            "title": None,
            "completed": False,
            "channel": None,
            "thread_ts": None,
        }
        return {"ok": True, "upload_url": f"{self.url}/upload/v1/{file_id}", "file_id": file_id}

    async def _handle_upload(self, request: web.Request) -> web.Response:
        file_id = request.match_info["file_id"]
        if request.content_type.startswith("multipart/"):
            form = await request.post()
            part = form.get("file") or form.get("filename")
            data = part.file.read() if hasattr(part, "file") else str(part or "").encode()
        else:
            data = await request.read()
        with self._lock:
            upload = self._uploads.get(file_id)
            if upload is None or upload["completed"]:
                return web.Response(status=404, text="Not Found")
            upload["data"] = data
            self._bump()
        return web.Response(status=200, text=f"OK - {len(data)}")

    def _files_complete_upload_external(self, params: dict[str, Any]) -> dict[str, Any]:
        raw = params.get("files")
        try:
            files = json.loads(raw) if isinstance(raw, str) else raw
        except ValueError:
            raise _SlackError("invalid_arguments") from None
        if not isinstance(files, list) or not files:
            raise _SlackError("invalid_arguments")
        uploads = []
        for item in files:
            upload = self._uploads.get(str(item.get("id"))) if isinstance(item, dict) else None
            if upload is None or upload["data"] is None or upload["completed"]:
                raise _SlackError("file_not_found")
            uploads.append((upload, item))
        channel = None
        if params.get("channel_id"):
            channel = self._resolve_channel({"channel": params["channel_id"]})
        thread_ts = params.get("thread_ts") or None
        shared = []
        for upload, item in uploads:
            upload.update(
                completed=True,
                title=item.get("title") or upload["filename"],
                channel=channel,
                thread_ts=thread_ts,
            )
            shared.append(
                {
                    "id": upload["id"],
                    "name": upload["filename"],
                    "title": upload["title"],
                    "size": len(upload["data"]),
                }
            )
        if channel is not None:
            msg = self._store_message(
                channel,
                text=params.get("initial_comment"),
                blocks=None,
                user=self.bot_user_id,
                thread_ts=thread_ts,
            )
            msg["files"] = copy.deepcopy(shared)
        return {"ok": True, "files": shared}

    def _files_upload_retired(self, params: dict[str, Any]) -> dict[str, Any]:
        raise _SlackError("method_deprecated")
