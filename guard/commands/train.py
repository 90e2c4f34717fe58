"""`guard train`: train a classifier head from JSONL rows (`text`, `label`, `category`[, `techniques`]).

    guard train --recipe models/prompt_injection/recipe.yaml --out models/prompt_injection
    guard train --data a.jsonl --data b.jsonl --name my_head --category prompt_injection --out models/my_head

Carves a seeded, stratified, group-aware validation split first, shows tqdm progress on stderr, and
prints the validation figures (with 95% Wilson intervals) when done.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from guard.errors import GuardError
from guard.types import Category


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--recipe", type=Path, help="a recipe YAML (see models/*/recipe.yaml)")
    parser.add_argument("--data", type=Path, action="append", default=[], help="a JSONL file of rows (repeatable)")
    parser.add_argument("--name", help="head name (without --recipe)")
    parser.add_argument("--category", choices=[c.value for c in Category], help="category (without --recipe)")
    parser.add_argument("--mode", choices=["binary", "techniques"], default="binary")
    parser.add_argument("--out", type=Path, required=True, help="model folder to write")
    parser.add_argument("--seed", type=int, help="split and training seed (overrides the recipe)")
    parser.add_argument("--validation-fraction", type=float, help="share of rows held out (default 0.2)")
    parser.add_argument("--epochs", type=int, help="training epochs (overrides the recipe)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads for encoding (default 1)")
    parser.add_argument("--cache-dir", type=Path, default=Path(".cache/guard-embeddings"))


def run(args: argparse.Namespace) -> int:
    from guard.training.recipe import DataSource, Recipe, load_recipe
    from guard.training.trainer import train

    try:
        if args.recipe is not None:
            recipe = load_recipe(args.recipe)
        elif args.data and args.name and args.category:
            recipe = Recipe(
                name=args.name, category=Category(args.category), mode=args.mode,
                data=[DataSource(path=p) for p in args.data],
            )
        else:
            print("guard train: give --recipe FILE, or --data FILE (repeatable) with --name and --category", file=sys.stderr)
            return 2
        overrides = {
            key: value
            for key, value in (("seed", args.seed), ("validation_fraction", args.validation_fraction), ("epochs", args.epochs))
            if value is not None
        }
        if overrides:
            recipe = Recipe.model_validate({**recipe.model_dump(), **overrides})
        result = train(recipe, args.out, threads=args.threads, cache_dir=args.cache_dir)
    except (GuardError, ValueError) as exc:
        print(f"guard train: {exc}", file=sys.stderr)
        return 2
    v = result.metrics["validation"]
    print(f"{recipe.name}: threshold {result.threshold:.4f}; validation ({result.metrics['rows']['validation']} rows)")
    for key in ("recall", "fpr", "precision"):
        entry = v[key]
        print(f"  {key:<9} {entry['value']:.3f} [{entry['low']:.3f}, {entry['high']:.3f}]")
    print(f"  f1        {v['f1']}")
    print(f"wrote {args.out}/config.yaml, head.npz, metrics.json, card.md")
    return 0
