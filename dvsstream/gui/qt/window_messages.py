"""The window's messages: the status line, the red error banner (what failed, why, what
to do; the same line once on stderr), the amber note banner, and the guard that turns
an exception in a slot into a message instead of a dead window."""

from __future__ import annotations

import sys
import traceback

from dvsstream.errors import DvsstreamError

__all__ = ["MessagesMixin"]


def _html(text: str) -> str:
    """Plain text for a rich-text label."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class MessagesMixin:
    """:class:`~dvsstream.gui.qt.window.MainWindow`'s messages: ``message`` (the status
    line), ``error_banner`` / ``error_text``, ``note_banner`` / ``note_text``; it keeps
    :attr:`last_message`, :attr:`last_error`, :attr:`errors` and :attr:`notes`."""

    def _guarded(self, fn):
        """Run a slot; a user-facing error becomes a message, a bug a message plus a
        traceback on stderr. The window never dies of a slot."""
        def run(*args):
            try:
                return fn(*args)
            except (DvsstreamError, ValueError) as exc:
                self.show_error(str(exc))
            except Exception as exc:  # a bug: keep the window alive, say what happened
                text = f"{type(exc).__name__}: {exc}"
                if text != self.last_error:  # a failing redraw would repeat it 40 times a second
                    traceback.print_exc(file=sys.stderr)
                    self.show_error(text)
        return run

    def show_message(self, text: str) -> None:
        self.last_message = text
        self.message.setStyleSheet("color:#aab3bf")
        self.message.setText(text)

    def show_error(self, text: str, headline: str = "Something went wrong", todo: str = "") -> None:
        """A failure: the red banner above the views says what failed (``headline``),
        why (``text``) and what to do (``todo``); the same line goes to stderr (once) and
        the status bar. Unattended runs that saw one exit with status 2."""
        line = f"{headline}: {str(text).rstrip('.')}" + (f". {todo}" if todo else "")
        self.last_message = self.last_error = text
        self.message.setStyleSheet("color:#ff6b6b; font-weight:600")
        self.message.setText(f"⚠ {line}")
        self.error_text.setText(f"<b>{_html(headline)}</b><br>{_html(text)}"
                                + (f"<br><span style='color:#ffd2d2'>{_html(todo)}</span>" if todo else ""))
        self.error_banner.setVisible(True)
        self._last_failure = line
        if line not in self.errors:
            self.errors.append(line)
            if self._held_lines is not None:  # start(): a remembered setting may still be replaced
                self._held_lines.append(line)
            else:
                print(f"dvsstream gui: {line}", file=sys.stderr, flush=True)

    def show_note(self, text: str) -> None:
        """Something the user should know that is not a failure (a stale setting was
        replaced by the default, ...): the amber banner, and stderr once."""
        self.note_text.setText(_html(text))
        self.note_banner.setVisible(True)
        if text not in self.notes:
            self.notes.append(text)
            print(f"dvsstream gui: note: {text}", file=sys.stderr, flush=True)

    def clear_error(self) -> None:
        self.error_banner.setVisible(False)
