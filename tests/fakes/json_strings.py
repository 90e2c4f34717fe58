"""Every string value of a parsed JSON document (`guard.codecs.jsonscan.parse_json`), in body order: the
codecs' own walker, under the name the codec tests use."""

from __future__ import annotations

from guard.codecs.jsonscan import located_strings as json_strings

__all__ = ["json_strings"]
