"""An upstream's error answer (4xx) on a screened route: every string in its JSON body is screenable text.

Model servers echo the prompt in error messages (`"message": "... 'Mail jane@example.com ...' is too
long"`), so a 4xx body is screened like an answer before it is relayed (issue 15). Whatever the API's
error shape (OpenAI's `error.message`, Anthropic's, a proxy's own), every string value is a slot, and
redaction rewrites them in place (`jsonsplice`), leaving every other byte as the upstream sent it. A body
that is not JSON cannot be screened this way: `extract_error` says so (None), and the proxy withholds it.
"""

from __future__ import annotations

from guard.codecs.base import Extraction, TextSlot
from guard.codecs.jsonscan import SlotLiterals, located_strings, parse_json
from guard.errors import RequestError
from guard.types import Direction

ERROR_ROLE = "upstream_error"


def extract_error(body: bytes, max_depth: int, max_texts: int) -> Extraction | None:
    """The strings of a JSON error body as slots (rewrite them with `jsonsplice.rewrite_slots`), or None
    when the body is not JSON within the limits or holds more strings than `max_texts`."""
    try:
        document = parse_json(body, max_depth, Direction.OUTPUT)
    except RequestError:
        return None
    literals = located_strings(document.value)
    if len(literals) > max_texts:
        return None
    slots = tuple(TextSlot(i, str(literal), ERROR_ROLE) for i, literal in enumerate(literals))
    return Extraction(slots, False, SlotLiterals(document, tuple(literals)))
