"""config.xml helpers shared by the configuration tests and the monitoring tests: write a config, load it."""

from __future__ import annotations

from pathlib import Path

import pytest

from sync.config import Settings, load_settings
from sync.errors import EXIT_USAGE, ConfigError, ConfigProblem
from sync.secrets import KeyStore

TENANT = "6f1c2f4e-3b1a-4c8e-9d7a-1a2b3c4d5e6f"
APP = "11111111-2222-4333-8444-555555555555"
PUBLIC = "22222222-3333-4444-8555-666666666666"
CLIENT_SECRET = "KnownClientSecret~Value.123"
PASSWORD = "Pr3sence-Sync!2026"


def xml(*accounts: str, source: str = 'enabled="true"', extra: str = "") -> str:
    body = "\n".join(accounts)
    return f"""<?xml version="1.0" encoding="utf-8"?>
<Ucc>
  <Service Name="Helpdesk" Whatever="not ours">
    <PresenceProvider>
      <MsGraphPresenceSource {source}>{extra}
        <Accounts>
{body}
        </Accounts>
      </MsGraphPresenceSource>
    </PresenceProvider>
  </Service>
</Ucc>
"""


def app_account(keys: KeyStore, acc_id: str = "contoso.com", inner: str = "") -> str:
    return f"""          <Account Id="{acc_id}"
                   ClientId="{APP}"
                   TenantId="{TENANT}"
                   EncryptedSecret="{keys.encrypt(CLIENT_SECRET)}">
            <AgentList SiteUrl="https://contoso.sharepoint.com/sites/agents"/>{inner}
          </Account>"""


def write(tmp_path: Path, text: str, name: str = "config.xml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def load(path: Path | None, state: Path, overrides: dict[str, object] | None = None,
         env: dict[str, str] | None = None, dotenv: Path | None = None) -> tuple[Settings, list[ConfigProblem]]:
    base = {"PRESENCE_SYNC_STATE_DIR": str(state), "HOME": str(state.parent)}
    return load_settings(path, overrides or {}, env={**base, **(env or {})},
                         dotenv_path=dotenv or state.parent / "no.env")


def problems_of(path: Path, state: Path, **kw: object) -> list[ConfigProblem]:
    with pytest.raises(ConfigError) as err:
        load(path, state, **kw)  # type: ignore[arg-type]
    assert err.value.exit_code == EXIT_USAGE
    assert str(err.value).splitlines() == [str(p) for p in err.value.problems]
    return err.value.problems
