"""Reproducibility fields: one flat dict of optional schema columns; stable weight hashes."""

import json

import pytest

from effplan import reproducibility as rep
from effplan.errors import ValidationError
from effplan.records.schema import MEASUREMENT_COLUMNS, normalize_measurements

torch = pytest.importorskip("torch")


def _model(seed):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 2))


def test_fields_are_flat_and_schema_columns():
    from effplan.records.samples import TimingPolicy

    f = rep.reproducibility_fields(_model(0), seed=7, config={"width": 3},
                                   timing_policy=TimingPolicy(time_budget_s=0.5))
    assert set(f) == set(rep.REPRODUCIBILITY_COLUMNS) | {"torch_version"}
    assert set(f) <= set(MEASUREMENT_COLUMNS)
    assert all(isinstance(v, str | int) for v in f.values())
    assert f["seed"] == 7 and f["torch_version"] == torch.__version__
    assert json.loads(f["timing_policy"])["time_budget_s"] == 0.5
    assert len(f["weights_sha256"]) == 64 and len(f["config_sha256"]) == 64


def test_weights_hash_same_weights_same_hash_changed_weight_differs():
    a, b = _model(0), _model(0)
    assert rep.weights_sha256(a) == rep.weights_sha256(b)
    with torch.no_grad():
        b[0].weight[0, 0] += 1e-6
    assert rep.weights_sha256(a) != rep.weights_sha256(b)
    assert rep.weights_sha256(a) != rep.weights_sha256(_model(1))


def test_quantized_model_hashes_packed_weights():
    from effplan.examples import _quantize

    q0, q1 = _quantize(_model(0)), _quantize(_model(1))
    assert rep.weights_sha256(q0) == rep.weights_sha256(_quantize(_model(0)))
    assert rep.weights_sha256(q0) != rep.weights_sha256(q1)


def test_config_hash_order_independent_and_empty_without():
    assert rep.config_sha256({"a": 1, "b": 2}) == rep.config_sha256({"b": 2, "a": 1})
    assert rep.config_sha256(None) == ""
    assert rep.reproducibility_fields()["weights_sha256"] == ""
    with pytest.raises(ValidationError, match="seed"):
        rep.reproducibility_fields(seed="x")


def test_old_rows_without_the_columns_still_validate():
    import pandas as pd

    df = pd.DataFrame([{"candidate": "a", "hardware": "h", "mode": "inference", "batch_size": 1,
                        "latency_p95_ms": 1.0, "throughput_items_per_s": 1.0,
                        "energy_per_item_j": 1.0, "idle_power_w": 1.0}])
    out = normalize_measurements(df)
    assert out.loc[0, "weights_sha256"] == "" and out["seed"].isna().all()
