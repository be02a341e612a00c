"""The engine push moved to builder.engine.push (issue 13); this name stays only while
builder/pipeline.py imports it from here. New code imports ``builder.engine``."""

from builder.engine.pushing import PushError, PushOutcome, classify, push_deadline, push_tag, pushed_name

__all__ = ["PushError", "PushOutcome", "classify", "push_deadline", "push_tag", "pushed_name"]
