"""One way to build a presidio `RecognizerResult` for the local recognizers in this package.

presidio's context enhancer and the detector's overlap resolution read the recognizer name from
`recognition_metadata`; every recognizer here sets it the same way through `make_result`.
"""

from __future__ import annotations

from typing import Any


def make_result(recognizer: Any, entity: str, start: int, end: int, score: float, explanation: str) -> Any:
    from presidio_analyzer import AnalysisExplanation, RecognizerResult

    return RecognizerResult(
        entity_type=entity,
        start=start,
        end=end,
        score=score,
        analysis_explanation=AnalysisExplanation(
            recognizer=recognizer.name, original_score=score, textual_explanation=explanation
        ),
        recognition_metadata={
            RecognizerResult.RECOGNIZER_NAME_KEY: recognizer.name,
            RecognizerResult.RECOGNIZER_IDENTIFIER_KEY: recognizer.id,
        },
    )
