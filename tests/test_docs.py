"""The ODD's generated parameter table, and the sources of the estimated parameters."""

from __future__ import annotations

import pytest

from sim.docs import DEFAULT_ODD, DocsError, is_up_to_date, main, parameter_table, render_odd
from sim.params import field_rows


def test_odd_parameter_table_is_up_to_date():
    assert is_up_to_date(DEFAULT_ODD), (
        "docs/ODD.md's parameter table is out of date: run `python -m sim.docs docs/ODD.md`"
    )


def test_every_est_range_parameter_cites_an_estimate():
    offenders = [
        f"{row['key']} (source {row['source']!r})"
        for row in field_rows()
        if row["est_range"] is not None and "EST" not in row["source"]
    ]
    assert not offenders, "parameters with est_range but no EST source: " + "; ".join(offenders)


def test_table_has_a_row_per_key_and_escapes_pipes():
    table = parameter_table()
    lines = table.splitlines()
    assert lines[0].startswith("| key | unit | default | allowed range | EST range |")
    assert len(lines) == 2 + len(field_rows())
    # Every row has exactly the seven cells, so no unescaped pipe split one.
    for line in lines:
        assert line.replace("\\|", "").count("|") == 8


def test_render_replaces_only_between_markers():
    template = (
        "# Title\n\n<!-- parameter-table:start -->\nstale\n<!-- parameter-table:end -->\nEnd\n"
    )
    rendered = render_odd(template)
    assert rendered.startswith("# Title\n\n<!-- parameter-table:start -->\n")
    assert rendered.endswith("<!-- parameter-table:end -->\nEnd\n")
    assert "stale" not in rendered
    assert "`foreign.price_ref`" in rendered
    assert render_odd(rendered) == rendered


def test_render_refuses_missing_markers():
    with pytest.raises(DocsError, match="marker"):
        render_odd("# no markers here\n")


def test_check_exits_1_when_stale_and_rewrite_fixes_it(tmp_path, capsys):
    odd = tmp_path / "ODD.md"
    odd.write_text("<!-- parameter-table:start -->\n<!-- parameter-table:end -->\n")
    assert main(["--check", str(odd)]) == 1
    assert "out of date" in capsys.readouterr().err
    assert main([str(odd)]) == 0
    assert main(["--check", str(odd)]) == 0
