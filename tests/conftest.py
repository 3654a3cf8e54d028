"""Shared fixtures: where the bundled MLPerf Tiny models are (../shared/models beside the repo)."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
MLPERF_TINY = REPO.parent / "shared" / "models" / "mlperf_tiny"


def mlperf_model(name: str) -> Path:
    path = MLPERF_TINY / name
    if not path.is_file():
        pytest.skip(f"{path} is not there (the MLPerf Tiny models live in ../shared/models)")
    return path
