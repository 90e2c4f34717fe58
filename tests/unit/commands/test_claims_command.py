"""`guard claims add`: claims need a source; added claims are found with their id and source named."""

from __future__ import annotations

import json
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from guard.cli import main
from guard.detectors.base import DetectorResources
from guard.detectors.claims import DEFAULT_CLAIMS_DIR, ClaimsConfig, ClaimsDetector, read_claims
from guard.types import Direction, ScanContext


@pytest.fixture
def claims_dir(tmp_path: Path) -> Path:
    target = tmp_path / "claims"
    shutil.copytree(DEFAULT_CLAIMS_DIR, target)
    return target


def test_a_claim_without_a_source_is_refused_and_nothing_is_written(claims_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = (claims_dir / "claims.jsonl").read_bytes()
    assert main(["claims", "add", "--claim", "The moon is made of cheese.", "--model-dir", str(claims_dir)]) == 2
    assert "needs a source" in capsys.readouterr().err
    lines = claims_dir / "lines.jsonl"
    lines.write_text(json.dumps({"claim": "x is y", "source": "s"}) + "\n" + json.dumps({"claim": "", "source": "s"}) + "\n")
    assert main(["claims", "add", "--jsonl", str(lines), "--model-dir", str(claims_dir)]) == 2
    assert "lines.jsonl:2" in capsys.readouterr().err
    assert (claims_dir / "claims.jsonl").read_bytes() == before


@pytest.mark.model
@pytest.mark.anyio
async def test_added_claim_is_found_and_named_with_its_source(claims_dir: Path) -> None:
    claim = "The HPV vaccine causes infertility in young women."
    source = "https://www.who.int/news-room/questions-and-answers/item/vaccines-and-immunization-human-papillomavirus"
    version = (claims_dir / "config.yaml").read_text()
    assert main(["claims", "add", "--claim", claim, "--source", source, "--id", "hpv-infertility",
                 "--model-dir", str(claims_dir)]) == 0
    assert main(["claims", "add", "--claim", claim, "--source", source, "--id", "hpv-infertility",
                 "--model-dir", str(claims_dir)]) == 2  # the id is taken
    assert read_claims(claims_dir / "claims.jsonl")[-1].id == "hpv-infertility"
    assert (claims_dir / "config.yaml").read_text() != version
    detector = ClaimsDetector(ClaimsConfig.model_validate({"kind": "claims", "name": "claims", "model_dir": str(claims_dir)}))
    with ThreadPoolExecutor(2) as executor:
        await detector.load(DetectorResources(executor, 1))
        ctx = ScanContext(direction=Direction.OUTPUT, tier="limited")
        found = await detector.detect(["Sadly, the HPV vaccine makes young women infertile.", "The weather is nice today."], ctx)
    [finding] = found[0]
    assert finding.label == "hpv-infertility" and source in finding.reason and finding.score >= 0.5
    assert not found[1]
