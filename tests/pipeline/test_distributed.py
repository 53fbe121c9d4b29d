"""The twin's chunked stages on a real ``dask.distributed`` cluster (``scale.scheduler``).

A ``LocalCluster`` of two worker processes (one thread each) runs the out-of-core
imaging stages; the stored results must equal those of the local-thread run.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest

from microbat.core.errors import FileFormatError
from microbat.pipeline.twin import run_twin

distributed = pytest.importorskip("distributed")

VOXEL = 0.5e-6
OOC = {  # the imaging stages (chunked) and metrics; the analyses after them run in memory
    **{f"{s}.enabled": False for s in ("transport", "cell", "eis", "gas", "heat")},
    **{f"{s}.enabled": False for s in ("representative", "mechanics", "report")},
    "scale.chunks": 16,
    "segment.spatial_prior": "none",
    "segment.psf_sigma": 0,
}
STAGES = ("denoise", "segment", "connectivity")


@pytest.fixture(scope="module")
def cluster():
    """Two worker processes, one thread each, no dashboard."""
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as lc,
        # not the default client: that one would set dask.config for the whole process
        distributed.Client(lc, set_as_default=False) as client,
    ):
        # workers up before the twin connects (the test measures the twin, not the start)
        client.wait_for_workers(2, timeout=60)
        yield lc


@pytest.fixture(scope="module")
def local_run(gray_npy, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("local") / "t"
    run_twin(gray_npy, voxel_size=VOXEL, out_dir=out, overrides=OOC)
    return out


def _zarr(path: Path) -> np.ndarray:
    import dask.array as da

    return np.asarray(da.from_zarr(str(path)).compute(scheduler="synchronous"))


def _result(out: Path, stage: str) -> dict:
    return json.loads((out / "stages" / stage / "result.json").read_text())


def _tasks_seen(cluster) -> int:
    """Tasks the workers have executed so far (their transition logs)."""
    with distributed.Client(cluster, set_as_default=False) as c:
        logs = c.run(lambda dask_worker: len(dask_worker.state.log))
    return sum(logs.values())


def _clients_left(cluster, allowed: set[str]) -> set[str]:
    """Client connections beyond ``allowed``, once closing ones have gone (within 10 s)."""
    for _ in range(100):
        extra = set(cluster.scheduler.clients) - allowed
        if not extra:
            break
        time.sleep(0.1)
    return extra


def test_twin_on_a_local_cluster_equals_the_threaded_run(cluster, local_run, gray_npy, tmp_path):
    clients = set(cluster.scheduler.clients)
    before = _tasks_seen(cluster)
    out = tmp_path / "t"
    res = run_twin(
        gray_npy,
        voxel_size=VOXEL,
        out_dir=out,
        overrides={**OOC, "scale.scheduler": cluster.scheduler_address},
    )
    assert [res.stage(s).status for s in STAGES] == ["complete"] * 3
    assert _tasks_seen(cluster) > before  # the work ran on the cluster's workers
    # the same filter, the same labels, the same clusters stitched across chunks
    assert np.allclose(
        _zarr(out / "stages/denoise/denoised.zarr"),
        _zarr(local_run / "stages/denoise/denoised.zarr"),
        rtol=0,
        atol=1e-5,  # map_overlap on the cluster, the streamed blocks locally: float32 sums
    )
    assert np.array_equal(
        _zarr(out / "stages/segment/labels.zarr"), _zarr(local_run / "stages/segment/labels.zarr")
    )
    got, ref = _result(out, "connectivity"), _result(local_run, "connectivity")
    assert got["out_of_core"] is True
    assert got["cluster_counts"] == ref["cluster_counts"]
    assert got["volume_fractions"] == ref["volume_fractions"]
    met, met_ref = _result(out, "metrics"), _result(local_run, "metrics")
    assert met["volume_fractions"] == met_ref["volume_fractions"]
    assert not _clients_left(cluster, clients)  # the twin closed the client it opened


def test_cli_scheduler_option(cluster, local_run, gray_npy, tmp_path):
    import typer
    from typer.testing import CliRunner

    from microbat.cli import _twin

    app = typer.Typer()

    @app.callback()
    def _root() -> None:
        """Test root."""

    _twin.register(app)
    args = ["twin", str(gray_npy), "--voxel-size", "0.5um", "--out", str(tmp_path / "c")]
    args += ["--chunks", "16", "--scheduler", cluster.scheduler_address, "--json"]
    for k, v in OOC.items():
        if k != "scale.chunks":
            args += ["--set", f"{k}={json.dumps(v)}"]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    stages = {s["name"]: s["status"] for s in data["stages"]}
    assert all(stages[s] == "complete" for s in STAGES)
    assert np.array_equal(
        _zarr(tmp_path / "c/stages/segment/labels.zarr"),
        _zarr(local_run / "stages/segment/labels.zarr"),
    )


@pytest.mark.parametrize("address", ["tcp://127.0.0.1:1", "tcp://localhost:port", "foo://x"])
def test_unreachable_scheduler_is_one_line(labelled_h5, tmp_path, address):
    # a refused port fails at once (not after the client's 20 s of retries)
    with pytest.raises(FileFormatError, match="cannot reach the Dask scheduler") as err:
        run_twin(
            labelled_h5,
            out_dir=tmp_path / "b",
            overrides={**OOC, "scale.scheduler": address},
        )
    assert "\n" not in str(err.value)
    assert not (tmp_path / "b" / "stages" / "denoise" / "result.json").exists()
