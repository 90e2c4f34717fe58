"""`guard claims add`: extend a claims database (`kind: claims`) with debunked claims, each with its source.

    guard claims add --claim "The HPV vaccine causes infertility." --source "https://www.who.int/..."
    guard claims add --jsonl our-claims.jsonl --model-dir /etc/guard/claims   # lines {"claim", "source"[, "id"]}

Appends to the folder's `claims.jsonl`, encodes the new claims with the encoder the folder's `config.yaml`
pins and adds their vectors to `embeddings.npz` (so startup does not re-encode them), and bumps the config's
`version` to the digest of the database, so the detector's version and every cached verdict change with it.
A claim without a source, an empty claim or an id already in the database is refused (exit 2) and nothing
is written. Findings name the claim's id and source.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

from guard.errors import ConfigError, GuardError


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="claims_command", required=True, metavar="ACTION")
    add = sub.add_parser("add", help="add debunked claims, each with a source, and recompute their embeddings")
    add.add_argument("--claim", help="the false claim, as a sentence that asserts it")
    add.add_argument("--source", help="where it is debunked (URL or citation); required with --claim")
    add.add_argument("--id", help="claim id (default: user-<digest of the claim>)")
    add.add_argument("--licence", default="", help="licence of the claim's text, if any")
    add.add_argument("--jsonl", type=Path, help='a file of {"claim", "source"[, "id", "licence"]} lines')
    add.add_argument("--model-dir", type=Path, help="claims folder (default: the shipped models/claims)")


def _new_claims(args: argparse.Namespace) -> list[dict[str, str]]:
    raw: list[dict[str, object]] = []
    if args.claim is not None:
        raw.append({"claim": args.claim, "source": args.source, "id": args.id, "licence": args.licence})
    if args.jsonl is not None:
        try:
            lines = args.jsonl.read_text(encoding="utf-8").split("\n")
        except OSError as exc:
            raise ConfigError(f"{args.jsonl}: cannot read ({exc.strerror})") from None
        for number, line in enumerate(lines, start=1):
            if line.strip():
                try:
                    entry = json.loads(line)
                except json.JSONDecodeError:
                    raise ConfigError(f"{args.jsonl}:{number}: not a JSON object") from None
                if not isinstance(entry, dict):
                    raise ConfigError(f"{args.jsonl}:{number}: not a JSON object")
                raw.append({**entry, "_where": f"{args.jsonl}:{number}"})
    if not raw:
        raise ConfigError("give --claim TEXT --source SOURCE, or --jsonl FILE")
    out = []
    for entry in raw:
        where = str(entry.get("_where", "--claim"))
        claim, source = entry.get("claim"), entry.get("source")
        if not isinstance(claim, str) or not claim.strip():
            raise ConfigError(f"{where}: the claim is empty")
        if not isinstance(source, str) or not source.strip():
            raise ConfigError(f"{where}: every claim needs a source (--source URL or citation)")
        claim_id = entry.get("id") or "user-" + hashlib.sha256(claim.strip().encode()).hexdigest()[:12]
        out.append({"id": str(claim_id), "claim": claim.strip(), "source": source.strip(), "licence": str(entry.get("licence") or "")})
    return out


def add_claims(model_dir: Path, new: list[dict[str, str]]) -> int:
    """Append `new` to the database in `model_dir` and extend its embeddings; returns the database size."""
    import numpy as np
    import yaml

    from guard.detectors.claims import ClaimsModelConfig, read_claims, text_key
    from guard.detectors.encoder import SentenceEncoder
    from guard.detectors.normalize import TextNormalizer

    config_path = model_dir / "config.yaml"
    try:
        raw = yaml.safe_load(config_path.read_text(encoding="utf-8"))
        model = ClaimsModelConfig.model_validate(raw)
    except OSError:
        raise ConfigError(f"{config_path}: cannot read (is --model-dir a claims folder?)") from None
    except (yaml.YAMLError, ValueError) as exc:
        raise ConfigError(f"{config_path}: not a claims model config ({type(exc).__name__})") from None
    database = model_dir / model.database
    existing = read_claims(database)
    taken = {c.id for c in existing}
    for claim in new:
        if claim["id"] in taken:
            raise ConfigError(f"claim id '{claim['id']}' is already in {database}")
        taken.add(claim["id"])
    encoder = SentenceEncoder(model.encoder, threads=1)
    encoder.load()
    normalizer = TextNormalizer(encoder.vocabulary())
    texts = [normalizer(c["claim"]) for c in new]
    vectors = encoder.encode_many(texts)
    store = model_dir / model.embeddings
    keys: list[str] = []
    stored: list[np.ndarray] = []
    if store.is_file():
        with np.load(store, allow_pickle=False) as data:
            keys, stored = data["keys"].tolist(), list(data["vectors"])
    keys += [text_key(t) for t in texts]
    stored += [v.astype(np.float16) for v in vectors]
    with database.open("a", encoding="utf-8") as handle:
        for claim in new:
            handle.write(json.dumps({k: v for k, v in claim.items() if v}, ensure_ascii=False, sort_keys=True) + "\n")
    partial = store.with_suffix(".tmp.npz")
    with partial.open("wb") as binary:
        np.savez_compressed(binary, keys=np.array(keys), vectors=np.stack(stored).astype(np.float16))
    partial.replace(store)
    raw["version"] = hashlib.sha256(database.read_bytes()).hexdigest()[:12]
    config_path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    return len(existing) + len(new)


def run(args: argparse.Namespace) -> int:
    from guard.detectors.claims import DEFAULT_CLAIMS_DIR

    try:
        new = _new_claims(args)
        total = add_claims(args.model_dir or DEFAULT_CLAIMS_DIR, new)
    except GuardError as exc:
        print(f"guard claims add: {exc}", file=sys.stderr)
        return 2
    for claim in new:
        print(json.dumps({"added": claim["id"], "source": claim["source"]}))
    print(f"{total} claims in the database", file=sys.stderr)
    return 0
