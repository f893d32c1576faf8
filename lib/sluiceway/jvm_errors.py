"""Turn the exceptions Spark raises through Py4J into one readable line."""

from __future__ import annotations

import re
from typing import Any

from py4j.protocol import Py4JError, Py4JJavaError
from pyspark.errors.exceptions.captured import CapturedException

# What a Spark action or read may raise on the Python side; catch these, nothing broader.
SPARK_ERRORS: tuple[type[BaseException], ...] = (Py4JJavaError, CapturedException, Py4JError)
# A message of ours raised inside a Spark job (assert_true / raise_error), as Spark 4 wraps
# it: the class and SQL state say nothing the message does not.
_USER_RAISED = re.compile(r"^\[USER_RAISED_EXCEPTION\] (?P<message>.*?)(?: SQLSTATE: \w+)?$")


def _is_sql_exception(java_exc: Any) -> bool:
    cls = java_exc.getClass()
    while cls is not None:
        if cls.getName() == "java.sql.SQLException":
            return True
        cls = cls.getSuperclass()
    return False


def describe_spark_error(exc: BaseException) -> str:
    """One line naming the cause: the JDBC driver's message if any, else the root cause's."""
    java_exc = getattr(exc, "java_exception", None) or getattr(exc, "_origin", None)
    message = None
    seen = 0
    while java_exc is not None and seen < 20:
        seen += 1
        text = java_exc.getMessage()
        if text:
            message = str(text)
            if _is_sql_exception(java_exc):
                break  # "password authentication failed ..." beats "Connection reset"
        cause = java_exc.getCause()
        if cause is None or cause.equals(java_exc):
            break
        java_exc = cause
    if message is None:
        message = str(exc)
    lines = [line.strip() for line in message.strip().splitlines() if line.strip()]
    if not lines:
        return type(exc).__name__
    raised = _USER_RAISED.match(lines[0])
    return raised.group("message") if raised else lines[0]
