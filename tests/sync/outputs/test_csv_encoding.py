"""CsvEncoding: UTF-8 without a BOM by default, utf-8-sig (one BOM at the start) for Excel, for every CSV file."""

from __future__ import annotations

import codecs
import csv
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from sync.config import CSV_ENCODINGS, load_settings
from sync.errors import ConfigError
from sync.models import Change, CycleResult, Presence, ValidationRow
from sync.outputs.csv import append_history_csv, write_presence_csv, write_validation_csv
from sync.outputs.folder import Outputs
from sync.outputs.history import catch_up_history
from sync.reporting import Scope
from sync.reporting.export import run_export
from sync.store import Store

BOM = codecs.BOM_UTF8
T0 = datetime(2026, 11, 30, 9, 0, 0, tzinfo=UTC)
NAME = "José García"  # what Excel shows as "JosÃ© GarcÃ­a" without a BOM


def pres(i: int, availability: str = "Available", at: datetime = T0) -> Presence:
    return Presence("contoso", i, f"agent{i}@contoso.com", f"id-{i}", NAME, availability, availability, "", False,
                    at, sequence_number=f"s{i}-{availability}")


def change(i: int, at: datetime = T0) -> Change:
    return Change("contoso", f"jose{i}.garcía@contoso.com", f"id-{i}", "Available", "Available", "Busy", "Busy", at)


def verdict(i: int) -> ValidationRow:
    return ValidationRow(i, f" {NAME} ", "", "invalid", ("WHITESPACE", "DISPLAY_NAME"), "error")


def dict_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8-sig") as fh:
        return list(csv.DictReader(fh))


@pytest.mark.parametrize("encoding", CSV_ENCODINGS)
def test_whole_file_outputs_start_with_one_bom_only_for_utf8_sig(tmp_path: Path, encoding: str) -> None:
    paths = [write_presence_csv(tmp_path / "presence.csv", [pres(1), pres(2)], encoding=encoding),
             write_validation_csv(tmp_path / "validation.csv", [("contoso", verdict(1))], encoding)]
    for path in paths:
        data = path.read_bytes()
        assert data.startswith(BOM) is (encoding == "utf-8-sig"), path.name
        assert data.count(BOM) == (encoding == "utf-8-sig")
        assert data.removeprefix(BOM).startswith(b"account_id,")
        assert NAME.encode("utf-8") in data  # the text itself is UTF-8 either way
    assert dict_rows(paths[0])[0]["display_name"] == NAME
    assert dict_rows(paths[1])[0]["raw_upn"] == f" {NAME} "


def test_history_gets_its_bom_when_begun_and_never_mid_file(tmp_path: Path) -> None:
    path = tmp_path / "presence_history.csv"
    for n in range(3):
        append_history_csv(path, [change(n, T0 + timedelta(seconds=n))], "utf-8-sig")
    data = path.read_bytes()
    assert data.startswith(BOM + b"account_id,") and data.count(BOM) == 1
    assert [r["upn"] for r in dict_rows(path)] == [f"jose{n}.garcía@contoso.com" for n in range(3)]
    # A history begun without a BOM stays without one when the setting changes: no BOM lands mid-file.
    plain = tmp_path / "plain.csv"
    append_history_csv(plain, [change(1)])
    append_history_csv(plain, [change(2)], "utf-8-sig")
    assert BOM not in plain.read_bytes() and len(dict_rows(plain)) == 2
    # And one begun with a BOM keeps just that one under utf-8.
    append_history_csv(path, [change(9)], "utf-8")
    assert path.read_bytes().count(BOM) == 1 and len(dict_rows(path)) == 4


def test_catch_up_reads_a_history_with_a_bom(tmp_path: Path) -> None:
    """The start-up catch-up compares the CSV's rows with the store: the BOM is no part of the header or a row."""
    out = tmp_path / "presence_history.csv"
    with Store(tmp_path / "s.sqlite") as store:
        first = store.apply_presences("contoso", [pres(1, "Available"), pres(2, "Busy")])
        append_history_csv(out, first, "utf-8-sig")
        store.apply_presences("contoso", [pres(1, "Away", T0 + timedelta(seconds=5)), pres(2, "Busy")])
        assert catch_up_history(out, store, "utf-8-sig") == 1  # only the row the "killed" run left out
        assert catch_up_history(out, store, "utf-8-sig") == 0  # nothing twice, the header not taken for a row
    assert out.read_bytes().count(BOM) == 1
    assert [r["to_availability"] for r in dict_rows(out)] == ["Available", "Busy", "Away"]


def test_the_output_folder_writes_every_file_in_its_encoding(tmp_path: Path) -> None:
    outputs = Outputs(tmp_path / "out", "utf-8-sig")
    outputs.set_validation("contoso", [verdict(1)])
    for n in range(2):
        outputs.tick("contoso", [pres(1, ("Available", "Busy")[n])], T0 + timedelta(seconds=n), [change(n)])
    for path in (outputs.presence_csv, outputs.history_csv, outputs.validation_csv):
        assert path.read_bytes().count(BOM) == 1 and path.read_bytes().startswith(BOM), path.name
    assert len(dict_rows(outputs.history_csv)) == 2


def test_export_csvs_follow_the_encoding(tmp_path: Path) -> None:
    db = tmp_path / "state" / "presence-sync.sqlite"
    with Store(db) as store:
        store.apply_presences("contoso", [pres(1, "Available")])
        store.apply_presences("contoso", [pres(1, "Busy", T0 + timedelta(minutes=1))])
        store.record_cycle(CycleResult("contoso", T0, agents=1, presences=1, duration_s=0.01))
    scope = Scope(None, None, T0 - timedelta(hours=1), T0 + timedelta(hours=1))
    plain = run_export(db, tmp_path / "plain", scope)
    sig = run_export(db, tmp_path / "sig", scope, encoding="utf-8-sig")
    assert [p.name for p in plain] == [p.name for p in sig]
    for a, b in zip(plain, sig, strict=True):
        assert not a.read_bytes().startswith(BOM)
        assert b.read_bytes() == BOM + a.read_bytes()
    assert list(pd.read_csv(sig[0], encoding="utf-8-sig").columns)[0] == "account_id"


CONFIG = """<Configuration><PresenceProvider>
  <MsGraphPresenceSource enabled="true"{attr}>
    <Accounts>
      <Account Id="contoso" TenantId="6f1c2f4e-3b1a-4c8e-9d7a-1a2b3c4d5e6f"
               ClientId="11111111-2222-4333-8444-555555555555">
        <AgentList SiteUrl="https://contoso.sharepoint.com/sites/agents"/>
      </Account>
    </Accounts>
  </MsGraphPresenceSource>
</PresenceProvider></Configuration>
"""


def config(tmp_path: Path, attr: str = "") -> Path:
    path = tmp_path / "config.xml"
    path.write_text(CONFIG.format(attr=attr), encoding="utf-8")
    return path


def test_config_attribute_and_flag(tmp_path: Path) -> None:
    env = {"PRESENCE_SYNC_SECRET__CONTOSO": "dev-secret", "HOME": str(tmp_path)}
    plain, _ = load_settings(config(tmp_path), {}, env=env)
    assert plain.csv_encoding == "utf-8"
    excel, warnings = load_settings(config(tmp_path, ' CsvEncoding="UTF-8-SIG"'), {}, env=env)
    assert excel.csv_encoding == "utf-8-sig" and not warnings  # a known attribute, any case
    flag, _ = load_settings(config(tmp_path, ' CsvEncoding="utf-8-sig"'), {"csv_encoding": "utf-8"}, env=env)
    assert flag.csv_encoding == "utf-8"  # the flag wins


def test_an_unknown_encoding_is_a_configuration_error_naming_where(tmp_path: Path) -> None:
    env = {"PRESENCE_SYNC_SECRET__CONTOSO": "dev-secret", "HOME": str(tmp_path)}
    path = config(tmp_path, ' CsvEncoding="cp1252"')
    with pytest.raises(ConfigError) as bad:
        load_settings(path, {}, env=env)
    text = str(bad.value.problems[0])
    assert f"{path}:2" in text and "MsGraphPresenceSource/@CsvEncoding" in text
    assert "'cp1252'" in text and "utf-8-sig" in text
    with pytest.raises(ConfigError) as flag:
        load_settings(config(tmp_path), {"csv_encoding": "latin-1"}, env=env)
    assert "--csv-encoding" in str(flag.value.problems[0]) and "'latin-1'" in str(flag.value.problems[0])
