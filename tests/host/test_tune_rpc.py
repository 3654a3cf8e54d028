"""`tvmc tune --rpc-tracker`: TVM's own RPC tracker and two servers on loopback measure the trials."""

from __future__ import annotations

import json
import time

import pytest

from tests.models import zoo
from tvm_patch.cli import main

KEY = "tvmp-loopback"


@pytest.fixture
def tracker():
    from tvm import rpc
    from tvm.rpc.tracker import Tracker

    trk = Tracker(host="127.0.0.1", port=9290, port_end=9390, silent=True)
    servers = [
        rpc.Server(
            host="127.0.0.1", port=9400, port_end=9500, key=KEY, tracker_addr=("127.0.0.1", trk.port), silent=True
        )
        for _ in range(2)
    ]
    try:
        deadline = time.monotonic() + 30
        while True:
            summary = rpc.connect_tracker("127.0.0.1", trk.port).summary()
            free = sum(q["free"] for k, q in summary["queue_info"].items() if k == KEY)
            if free == 2 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert free == 2, summary
        yield f"127.0.0.1:{trk.port}"
    finally:
        for s in servers:
            s.terminate()
        trk.terminate()


@pytest.mark.slow
def test_tune_over_rpc_with_two_local_servers(tracker, tmp_path, capsys):
    model = zoo.save(zoo.conv_chain([zoo.ConvSpec(8, stride=2), zoo.ConvSpec(8)], 3, 16), tmp_path / "chain.onnx")
    records = tmp_path / "records.json"
    rc = main(
        [
            "tune",
            str(model),
            "--target",
            "host",
            "--trials",
            "8",
            "--rpc-tracker",
            tracker,
            "--rpc-key",
            KEY,
            "-o",
            str(records),
        ]
    )
    out = capsys.readouterr()
    assert rc == 0, out.err
    assert "8 trials" in out.out
    doc = json.loads(records.read_text())
    assert doc["runner"] == "rpc" and doc["records"]
    # every record was measured (a failed RPC run is stored with no times)
    assert all(r[1][1] for r in doc["records"]), doc["records"][0]
    assert (
        main(["compile", str(model), "--target", "host", "--tuning-records", str(records), "-o", str(tmp_path / "o")])
        == 0
    )


def test_rpc_flags_are_checked(tmp_path, capsys):
    model = zoo.save(zoo.conv_chain([zoo.ConvSpec(8, stride=2)], 3, 16), tmp_path / "chain.onnx")
    assert (
        main(
            [
                "tune",
                str(model),
                "--target",
                "host",
                "--rpc-tracker",
                "nohost",
                "--rpc-key",
                "k",
                "-o",
                str(tmp_path / "r.json"),
            ]
        )
        == 1
    )
    assert "HOST:PORT" in capsys.readouterr().err
    assert (
        main(
            ["tune", str(model), "--target", "host", "--rpc-tracker", "127.0.0.1:9190", "-o", str(tmp_path / "r.json")]
        )
        == 1
    )
    assert "--rpc-key" in capsys.readouterr().err
