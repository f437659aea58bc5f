"""The log formatters and the token's mask (``idle_cull.command.logs``)."""

from __future__ import annotations

import io
import json
import logging
import sys

from idle_cull.command.logs import JsonFormatter, SecretFilter, TextFormatter


def test_json_formatter_keeps_exceptions() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.LogRecord(
            "x", logging.ERROR, __file__, 1, "failed %s", ("here",), sys.exc_info()
        )
    document = json.loads(JsonFormatter().format(record))
    assert document["message"] == "failed here"
    assert "ValueError: boom" in document["exception"]


def test_secret_filter_masks_the_token_in_any_record() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(TextFormatter("%(message)s"))
    handler.addFilter(SecretFilter("s3cret-token"))
    logger = logging.getLogger("test.secret")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.error("gateway said: invalid credentials 'token %s'", "s3cret-token")
    finally:
        logger.removeHandler(handler)
    assert stream.getvalue() == "gateway said: invalid credentials 'token ***'\n"
