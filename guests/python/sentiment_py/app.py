"""Sluice transformer in Python: the worker's process() hook that enriches
`message["content"]` with a sentiment, computed in the component from a
small word list instead of calling a sentiment API.

`content.sentiment` is "positive", "negative" or "neutral" and
`content.sentiment_score` the count of positive minus negative words. The
pipeline metadata `sentiment_threshold` (default 1) is the score from which
a text counts as positive (or, negated, negative). A message without
`content.text` passes unchanged.
"""

import logging
import re

from sluice_guest import Reject, transformer

logger = logging.getLogger(__name__)

POSITIVE = frozenset(
    "good great excellent happy love lovely nice pleasant wonderful best fast "
    "helpful friendly clean comfortable recommend perfect enjoyed amazing".split()
)
NEGATIVE = frozenset(
    "bad poor terrible awful sad hate dirty slow rude broken worst noisy "
    "disappointing cancelled late uncomfortable horrible refund".split()
)
WORDS = re.compile(r"[a-z']+")


def process(message, consumer_name, metadatas):
    content = message.get("content") if isinstance(message, dict) else None
    if not isinstance(content, dict) or "text" not in content:
        return message
    if not isinstance(content["text"], str):
        raise Reject("content.text is not a string")
    threshold = int(metadatas.get("sentiment_threshold", "1"))
    words = WORDS.findall(content["text"].lower())
    score = sum(w in POSITIVE for w in words) - sum(w in NEGATIVE for w in words)
    if score >= threshold:
        content["sentiment"] = "positive"
    elif score <= -threshold:
        content["sentiment"] = "negative"
    else:
        content["sentiment"] = "neutral"
    content["sentiment_score"] = score
    logger.debug(f"{consumer_name}: sentiment added to message {message.get('id')}")
    return message


Transform = transformer(process)
