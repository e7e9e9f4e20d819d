"""Block Kit limits as Slack enforces them, in Slack's `[ERROR] ... [json-pointer:...]` words."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

MESSAGE_BLOCK_LIMIT = 50
MODAL_BLOCK_LIMIT = 100
_TEXT_TYPES = ("plain_text", "mrkdwn")
_STYLES = ("primary", "danger")
_SELECTS = frozenset(
    f"{prefix}{kind}_select"
    for prefix in ("", "multi_")
    for kind in ("static", "external", "users", "conversations", "channels")
)


_ACTIONS_ELEMENTS = _SELECTS | {
    "button",
    "checkboxes",
    "datepicker",
    "datetimepicker",
    "overflow",
    "radio_buttons",
    "rich_text_input",
    "timepicker",
    "workflow_button",
}


_ACCESSORY_ELEMENTS = (_ACTIONS_ELEMENTS - {"datetimepicker", "rich_text_input"}) | {"image"}
_INPUT_ELEMENTS = _SELECTS | {
    "checkboxes",
    "datepicker",
    "datetimepicker",
    "email_text_input",
    "file_input",
    "number_input",
    "plain_text_input",
    "radio_buttons",
    "rich_text_input",
    "timepicker",
    "url_text_input",
}


_BLOCK_TYPES = frozenset(
    {
        "actions",
        "context",
        "divider",
        "file",
        "header",
        "image",
        "input",
        "markdown",
        "rich_text",
        "section",
        "video",
    }
)


def _too_long(limit: int) -> str:
    return f"must be less than {limit + 1} characters"


class _Checker:
    """Collects Slack-style `[ERROR] what [json-pointer:where]` messages for one surface."""

    def __init__(self) -> None:
        self.errors: list[str] = []
        self.block_ids: set[str] = set()
        self.action_ids: set[str] = set()

    def error(self, path: str, message: str) -> None:
        self.errors.append(f"[ERROR] {message} [json-pointer:{path}]")

    def string(
        self,
        parent: Mapping[str, Any],
        key: str,
        path: str,
        max_len: int,
        *,
        required: bool = False,
        min_len: int = 0,
    ) -> str | None:
        value = parent.get(key)
        where = f"{path}/{key}"
        if value is None:
            if required:
                self.error(path, f"missing required field: {key}")
            return None
        if not isinstance(value, str):
            self.error(where, "must be a string")
            return None
        if len(value) > max_len:
            self.error(where, _too_long(max_len))
        elif len(value) < min_len:
            self.error(where, f"must be more than {min_len - 1} characters")
        return value

    def text(
        self,
        parent: Mapping[str, Any],
        key: str,
        path: str,
        max_len: int,
        *,
        plain: bool = False,
        required: bool = True,
    ) -> None:
        obj = parent.get(key)
        if obj is None:
            if required:
                self.error(path, f"missing required field: {key}")
            return
        self.text_object(obj, f"{path}/{key}", max_len, plain=plain)

    def text_object(self, obj: Any, path: str, max_len: int, *, plain: bool = False) -> None:
        if not isinstance(obj, dict):
            self.error(path, "must be a text object")
            return
        kind = obj.get("type")
        if kind is None:
            self.error(path, "missing required field: type")
        elif plain and kind != "plain_text":
            self.error(f"{path}/type", "must be plain_text")
        elif kind not in _TEXT_TYPES:
            self.error(f"{path}/type", "must be one of plain_text, mrkdwn")
        self.string(obj, "text", path, max_len, required=True, min_len=1)

    def items(
        self, parent: Mapping[str, Any], key: str, path: str, max_items: int, *, min_items: int = 0
    ) -> list[Any]:
        value = parent.get(key)
        where = f"{path}/{key}"
        if value is None:
            if min_items:
                self.error(path, f"missing required field: {key}")
            return []
        if not isinstance(value, list):
            self.error(where, "must be an array")
            return []
        if len(value) > max_items:
            self.error(where, f"no more than {max_items} items allowed")
        elif len(value) < min_items:
            self.error(where, f"must provide at least {min_items} items")
        return value

    def blocks(self, blocks: Any, path: str, limit: int) -> None:
        if not isinstance(blocks, list):
            self.error(path, "must be an array")
            return
        if len(blocks) > limit:
            self.error(path, f"no more than {limit} items allowed")
        for i, block in enumerate(blocks):
            self.block(block, f"{path}/{i}")

    def block(self, block: Any, path: str) -> None:
        if not isinstance(block, dict):
            self.error(path, "must be an object")
            return
        kind = block.get("type")
        if kind is None:
            self.error(path, "missing required field: type")
            return
        if kind not in _BLOCK_TYPES:
            self.error(f"{path}/type", f"unsupported block type: {kind!r}")
            return
        block_id = self.string(block, "block_id", path, 255)
        if block_id is not None:
            if block_id in self.block_ids:
                self.error(f"{path}/block_id", f"block_id {block_id!r} must be unique")
            self.block_ids.add(block_id)
        getattr(self, f"_block_{kind}")(block, path)

    def _block_section(self, block: Mapping[str, Any], path: str) -> None:
        if block.get("text") is None and block.get("fields") is None:
            self.error(path, "must provide either text or fields")
        self.text(block, "text", path, 3000, required=False)
        for i, text in enumerate(self.items(block, "fields", path, 10)):
            self.text_object(text, f"{path}/fields/{i}", 2000)
        if block.get("accessory") is not None:
            self.element(block["accessory"], f"{path}/accessory", _ACCESSORY_ELEMENTS)

    def _block_header(self, block: Mapping[str, Any], path: str) -> None:
        self.text(block, "text", path, 150, plain=True)

    def _block_context(self, block: Mapping[str, Any], path: str) -> None:
        for i, element in enumerate(self.items(block, "elements", path, 10, min_items=1)):
            where = f"{path}/elements/{i}"
            if isinstance(element, dict) and element.get("type") == "image":
                self.element(element, where, frozenset({"image"}))
            else:
                self.text_object(element, where, 3000)

    def _block_actions(self, block: Mapping[str, Any], path: str) -> None:
        for i, element in enumerate(self.items(block, "elements", path, 25, min_items=1)):
            self.element(element, f"{path}/elements/{i}", _ACTIONS_ELEMENTS)

    def _block_divider(self, block: Mapping[str, Any], path: str) -> None:
        pass

    def _block_image(self, block: Mapping[str, Any], path: str) -> None:
        self._image(block, path)
        self.text(block, "title", path, 2000, plain=True, required=False)

    def _block_input(self, block: Mapping[str, Any], path: str) -> None:
        self.text(block, "label", path, 2000, plain=True)
        self.text(block, "hint", path, 2000, plain=True, required=False)
        if block.get("element") is None:
            self.error(path, "missing required field: element")
        else:
            self.element(block["element"], f"{path}/element", _INPUT_ELEMENTS)

    def _block_markdown(self, block: Mapping[str, Any], path: str) -> None:
        self.string(block, "text", path, 12000, required=True, min_len=1)

    def _block_rich_text(self, block: Mapping[str, Any], path: str) -> None:
        self.items(block, "elements", path, 10000, min_items=1)

    def _block_video(self, block: Mapping[str, Any], path: str) -> None:
        self.string(block, "video_url", path, 3000, required=True)
        self.string(block, "thumbnail_url", path, 3000, required=True)
        self.string(block, "alt_text", path, 2000, required=True)
        self.text(block, "title", path, 200, plain=True)

    def _block_file(self, block: Mapping[str, Any], path: str) -> None:
        self.string(block, "external_id", path, 255, required=True)

    def _image(self, obj: Mapping[str, Any], path: str) -> None:
        if obj.get("image_url") is None and obj.get("slack_file") is None:
            self.error(path, "must provide either image_url or slack_file")
        self.string(obj, "image_url", path, 3000)
        self.string(obj, "alt_text", path, 2000, required=True)

    def element(self, element: Any, path: str, allowed: frozenset[str]) -> None:
        if not isinstance(element, dict):
            self.error(path, "must be an object")
            return
        kind = element.get("type")
        if kind is None:
            self.error(path, "missing required field: type")
            return
        if kind not in allowed:
            self.error(f"{path}/type", f"element type {kind!r} is not allowed here")
            return
        if kind == "image":
            self._image(element, path)
            return
        action_id = self.string(element, "action_id", path, 255)
        if action_id is not None:
            if action_id in self.action_ids:
                self.error(f"{path}/action_id", f"action_id {action_id!r} must be unique")
            self.action_ids.add(action_id)
        self.text(element, "placeholder", path, 150, plain=True, required=False)
        if element.get("confirm") is not None:
            self.confirm(element["confirm"], f"{path}/confirm")
        if kind in ("button", "workflow_button"):
            self.text(element, "text", path, 75, plain=True)
            self.string(element, "value", path, 2000)
            self.string(element, "url", path, 3000)
            self.string(element, "accessibility_label", path, 75)
            style = element.get("style")
            if style is not None and style not in _STYLES:
                self.error(f"{path}/style", "must be one of primary, danger")
        elif kind in ("static_select", "multi_static_select"):
            if element.get("options") is None and element.get("option_groups") is None:
                self.error(path, "must provide either options or option_groups")
            self.options(element, path, 100, plain=True)
            for i, group in enumerate(self.items(element, "option_groups", path, 100)):
                where = f"{path}/option_groups/{i}"
                if isinstance(group, dict):
                    self.text(group, "label", where, 75, plain=True)
                    self.options(group, where, 100, plain=True, min_items=1)
        elif kind == "overflow":
            self.options(element, path, 5, plain=True, min_items=1)
        elif kind in ("checkboxes", "radio_buttons"):
            self.options(element, path, 10, plain=False, min_items=1)
        elif kind == "plain_text_input":
            self.string(element, "initial_value", path, 3000)

    def options(
        self,
        parent: Mapping[str, Any],
        path: str,
        max_items: int,
        *,
        plain: bool,
        min_items: int = 0,
    ) -> None:
        for i, option in enumerate(
            self.items(parent, "options", path, max_items, min_items=min_items)
        ):
            where = f"{path}/options/{i}"
            if not isinstance(option, dict):
                self.error(where, "must be an object")
                continue
            self.text(option, "text", where, 75, plain=plain)
            self.string(option, "value", where, 150, required=True)
            self.text(option, "description", where, 75, plain=plain, required=False)

    def confirm(self, confirm: Any, path: str) -> None:
        if not isinstance(confirm, dict):
            self.error(path, "must be an object")
            return
        self.text(confirm, "title", path, 100, plain=True)
        self.text(confirm, "text", path, 300)
        self.text(confirm, "confirm", path, 30, plain=True)
        self.text(confirm, "deny", path, 30, plain=True)
        style = confirm.get("style")
        if style is not None and style not in _STYLES:
            self.error(f"{path}/style", "must be one of primary, danger")


def validate_blocks(blocks: Any, *, modal: bool = False) -> list[str]:
    """Slack's `[ERROR] ...` messages for a message's (or a modal's) `blocks`; [] when valid."""
    checker = _Checker()
    if modal:
        checker.blocks(blocks, "/view/blocks", MODAL_BLOCK_LIMIT)
    else:
        checker.blocks(blocks, "/blocks", MESSAGE_BLOCK_LIMIT)
    return checker.errors


def validate_view(view: Any) -> list[str]:
    """Slack's `[ERROR] ...` messages for a `views.open/update/push` view; [] when valid."""
    checker = _Checker()
    path = "/view"
    if not isinstance(view, dict):
        checker.error(path, "must be an object")
        return checker.errors
    kind = view.get("type")
    if kind not in ("modal", "home"):
        checker.error(f"{path}/type", "must be one of modal, home")
    if kind == "modal":
        checker.text(view, "title", path, 24, plain=True)
        checker.text(view, "submit", path, 24, plain=True, required=False)
        checker.text(view, "close", path, 24, plain=True, required=False)
        blocks = view.get("blocks")
        has_input = isinstance(blocks, list) and any(
            isinstance(b, dict) and b.get("type") == "input" for b in blocks
        )
        if has_input and view.get("submit") is None:
            checker.error(path, "submit is required when the view has input blocks")
    checker.string(view, "private_metadata", path, 3000)
    checker.string(view, "callback_id", path, 255)
    checker.string(view, "external_id", path, 255)
    if view.get("blocks") is None:
        checker.error(path, "missing required field: blocks")
    else:
        checker.blocks(view["blocks"], f"{path}/blocks", MODAL_BLOCK_LIMIT)
    return checker.errors
