"""The layer graph data file the unit tier uses is what layer_graph reads off the model."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from tests.conftest import mlperf_model
from tvm_patch.frontend import load_model
from tvm_patch.layer_graph import layer_graph
from tvm_patch.lower import lower_to_program

DATA = Path(__file__).resolve().parents[1] / "data" / "layers" / "vww_96_int8.json"


def test_vww_layer_file_matches_the_model():
    layers = layer_graph(lower_to_program(load_model(mlperf_model("vww_96_int8.tflite")).mod).grouped)
    got = json.loads(json.dumps([dataclasses.asdict(layer) for layer in layers]))
    assert got == json.loads(DATA.read_text()), f"regenerate {DATA.name}: the layer graph changed"
