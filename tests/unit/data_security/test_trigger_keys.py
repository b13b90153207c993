"""Backdoor-trigger counting groups numbers by their 64-bit pattern (issue 10).

The trigger detector used to group every column by its canonical cell strings;
numbers are now grouped by their float64 bits, which is only correct if that
partitions rows exactly as the strings do and the codes mean the same values.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from bastion.data_security.poisoning import PoisoningPolicy
from bastion.data_security.poisoning._batch import BatchView
from bastion.data_security.poisoning._schema import TableSchema
from bastion.data_security.poisoning.triggers import _LABEL, _singles, _value_keys


def _view(frame: pl.DataFrame) -> BatchView:
    schema = TableSchema.infer(frame, label="y")
    x = schema.model_matrix(frame)
    return BatchView(frame, x, schema.label_codes(frame), np.zeros((frame.height, 2)), schema)


def test_numbers_grouped_by_bits_partition_rows_as_their_cell_strings() -> None:
    rng = np.random.default_rng(4)
    n = 3_000
    # the awkward values: signed zeros, NaN and null (one missing value), infinities,
    # integers beyond 2**53 (equal as floats), tiny and huge magnitudes, repeats
    awkward = [
        0.0,
        -0.0,
        float("nan"),
        None,
        float("inf"),
        -float("inf"),
        1e-300,
        1.5e300,
        2.0**53,
        2.0**53 + 1,
        0.1 + 0.2,
        0.3,
        5.0,
    ]
    f = [awkward[i] for i in rng.integers(0, len(awkward), n)]
    ints = rng.choice([5, -5, 0, 2**53 + 1, 2**53], n).tolist()
    frame = pl.DataFrame(
        {
            "y": rng.choice(["a", "b"], n).tolist(),
            "f": pl.Series(f, dtype=pl.Float64),
            "i": pl.Series(ints, dtype=pl.Int64),
            "c": rng.choice(["x", "y", "z"], n).tolist(),
        }
    )
    view = _view(frame)
    names = view.schema.feature_names
    keys = _value_keys(view).filter(pl.col(_LABEL) >= 0)
    # every value occurs hundreds of times: all are in the vocabulary, codes cover every row
    policy = PoisoningPolicy(trigger_min_support=2)
    vocab, _found, tested = _singles(keys, view.schema, policy)
    cells = view.cells.with_columns(pl.Series(_LABEL, view.y)).filter(pl.col(_LABEL) >= 0)
    for name in names:
        # the vocabulary is the sorted distinct cell strings, as when strings were grouped
        assert vocab.vocab[name] == sorted(cells.get_column(name).unique().to_list())
    assert tested == sum(len(vocab.vocab[name]) for name in names)
    # a row's code from its bits names the same value as the code of its cell string
    by_keys = vocab.codes(keys, names)
    by_cells = vocab.codes_of_cells(cells, names)
    assert by_keys.equals(by_cells)
    assert by_keys.null_count().row(0) == (0,) * by_keys.width
    assert len(vocab.vocab["f"]) >= 11, vocab.vocab["f"]  # -0.0 and 0.0 stay apart, NaN = null
