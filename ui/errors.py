"""Refusals in plain words, for the person who caused them, and one log line each.

Two places turn a bad request into a sentence: :func:`plain_errors` around each handler (bad audio, an unknown
language, a model still loading: the handler's own words), and :class:`PlainBlocks`, Gradio's ``Blocks`` with its
input preprocessing guarded (a path that was never uploaded, a payload with the wrong fields, a value a component
cannot read), which fails before any handler runs and which Gradio would answer with a null message and a
traceback. Bad input gets one ``INFO`` line in the server log; only a real fault gets a traceback.
"""

from __future__ import annotations

import contextlib
import functools
import html
import inspect
import logging
from collections.abc import Callable, Iterator

import gradio as gr
from gradio.exceptions import ComponentProcessingError, InvalidPathError

from engine.audio import AudioError
from engine.languages import UnknownLanguageError
from engine.scheduler_calls import SchedulerBusyError
from ui.runtime import ModelNotReady

log = logging.getLogger(__name__)

#: Said for anything unexpected: the person can do nothing about it but try again.
FAULT = "Something went wrong with this request; please try again."
NOT_UPLOADED = "That file was never uploaded to this server; upload it again."
MALFORMED = "This request does not carry what this action needs; reload the page and try again."
UNREADABLE = "One of the inputs could not be read; reload the page and try again."
NOT_OFFERED = "A setting has a value this page does not offer; reload the page and try again."


def refuse(message: str, where: str, reason: object) -> gr.Error:
    """The error for the person (no traceback printed by Gradio), after one log line saying why."""
    log.info("refused %s: %s", where, str(reason).splitlines()[0] if str(reason) else type(reason).__name__)
    # Gradio may render the message as HTML: what the person typed (a language code, say) is shown, never run.
    return gr.Error(html.escape(message, quote=False), print_exception=False)


def plain_errors(fn: Callable) -> Callable:
    """Turn anything a handler raises into a message for the person who triggered it; a generator handler (one
    that shows a first answer early) keeps being one."""

    @contextlib.contextmanager
    def in_words() -> Iterator[None]:
        try:
            yield
        except (AudioError, UnknownLanguageError, ModelNotReady, SchedulerBusyError) as e:
            raise refuse(str(e), fn.__name__, e) from e
        except gr.Error as e:  # the handler's own refusal, already in words
            raise refuse(str(e.message), fn.__name__, e.message) from e
        except Exception as e:
            log.exception("Handler %s failed", fn.__name__)
            raise gr.Error(FAULT, print_exception=False) from e

    if inspect.isgeneratorfunction(fn):

        @functools.wraps(fn)
        def generator(*args, **kwargs):
            with in_words():
                yield from fn(*args, **kwargs)

        return generator

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with in_words():
            return fn(*args, **kwargs)

    return wrapper


class PlainBlocks(gr.Blocks):
    """``gr.Blocks`` whose input preprocessing answers bad client data in one sentence (see the module)."""

    async def preprocess_data(self, block_fn, inputs, state, explicit_call=False):
        where = getattr(block_fn, "name", "request")
        try:
            return await super().preprocess_data(block_fn, inputs, state, explicit_call)
        except gr.Error as e:  # Gradio's own words ("Value: … is not in the list of choices: […]")
            raise refuse(
                NOT_OFFERED if "list of choices" in str(e.message) else str(e.message), where, e.message
            ) from e
        except InvalidPathError as e:
            raise refuse(NOT_UPLOADED, where, e) from e
        except ComponentProcessingError as e:
            raise refuse(UNREADABLE, where, e.__cause__ or e) from e
        except (ValueError, TypeError, KeyError, AttributeError) as e:  # wrong number or shape of inputs
            raise refuse(MALFORMED, where, e) from e
