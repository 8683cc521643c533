"""config.xml + .env + environment + flags -> Settings: parsing, every problem at once, precedence, secrecy.

Pure: temp files and injected environments; no network.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from config_support import (
    APP,
    CLIENT_SECRET,
    PASSWORD,
    PUBLIC,
    TENANT,
    app_account,
    load,
    problems_of,
    write,
    xml,
)

from sync.config import NATIONAL_CLOUDS, Secret, default_state_dir, env_name, load_settings
from sync.errors import ConfigError
from sync.secrets import KeyStore


@pytest.fixture()
def state(tmp_path: Path) -> Path:
    return tmp_path / "state"


@pytest.fixture()
def keys(state: Path) -> KeyStore:
    return KeyStore(state, env={})


def line_of(text: str, needle: str) -> int:
    return next(n for n, line in enumerate(text.splitlines(), 1) if needle in line)


# --- valid configurations ----------------------------------------------------------------------------------------


def test_valid_config_with_all_three_auth_modes(tmp_path: Path, state: Path, keys: KeyStore) -> None:
    text = xml(
        app_account(keys),
        f"""          <Account Id="fabrikam.com" ClientId="{PUBLIC}" TenantId="{TENANT}"
                   Username="svc-presence@contoso.com" EncryptedPassword="{keys.encrypt(PASSWORD)}"
                   AuthorityHost="https://127.0.0.1:8443/" GraphUrl="https://127.0.0.1:8443">
            <AgentList SiteUrl="https://127.0.0.1:8443/sites/fabrikam" List="People" UpnColumn="Email"/>
          </Account>""",
        f"""          <Account Id="device" ClientId="{PUBLIC.upper()}" TenantId="{TENANT}"/>""",
    )
    path = write(tmp_path, text)
    settings, warnings = load(path, state)
    assert warnings == []
    app, ropc, device = settings.accounts
    assert (app.auth, ropc.auth, device.auth) == ("secret", "password", "device")
    assert app.secret is not None and app.secret.reveal() == CLIENT_SECRET and app.secret_value() == CLIENT_SECRET
    assert app.username is None and app.password is None
    assert app.authority_host == "https://login.microsoftonline.com" and app.graph_url == "https://graph.microsoft.com"
    assert app.authority == f"https://login.microsoftonline.com/{TENANT}"
    assert (app.site_url, app.list_title, app.upn_column) == ("https://contoso.sharepoint.com/sites/agents",
                                                              "Agents", "UPN")
    assert ropc.username == "svc-presence@contoso.com" and ropc.password_value() == PASSWORD
    assert ropc.authority_host == "https://127.0.0.1:8443" and ropc.graph_url == "https://127.0.0.1:8443"
    assert (ropc.list_title, ropc.upn_column) == ("People", "Email")
    assert device.secret is None and device.password is None and device.site_url is None
    assert device.client_id == PUBLIC  # GUIDs are normalised to lower case
    assert app.source_line == line_of(text, 'Account Id="contoso.com"')
    assert settings.source_enabled and settings.active_accounts == settings.accounts
    assert settings.state_dir == state and settings.config_path == path
    assert (settings.interval, settings.writeback_interval, settings.domains_refresh) == (5.0, 60.0, 300.0)
    assert (settings.presence_budget_requests, settings.presence_budget_window) == (1500, 30.0)
    cols = settings.writeback_columns
    assert (cols.availability, cols.activity, cols.presence_updated, cols.upn_status) == (
        "Availability", "Activity", "PresenceUpdated", "UpnStatus")
    # The device account has no Agent list: fine at parse time, reported when SharePoint is needed.
    missing = settings.agent_list_problems()
    assert [(p.line, p.attribute) for p in missing] == [(line_of(text, 'Id="device"'), "AgentList/@SiteUrl")]
    assert "--roster" in str(missing[0])
    roster = load(path, state, overrides={"roster_csv": tmp_path / "agents.csv"})[0]
    assert roster.agent_list_problems() == []


def test_the_shipped_example_parses(tmp_path: Path, state: Path, keys: KeyStore) -> None:
    example = Path(__file__).resolve().parents[3] / "config" / "config.example.xml"
    text = example.read_text(encoding="utf-8")
    placeholder = "ps1:REPLACE-with-the-output-of-presence-sync-encrypt-secret"
    assert text.count(placeholder) == 2
    text = text.replace(placeholder, keys.encrypt(CLIENT_SECRET), 1).replace(placeholder, keys.encrypt(PASSWORD))
    settings, warnings = load(write(tmp_path, text), state)
    assert warnings == []
    assert [a.auth for a in settings.accounts] == ["secret", "password", "device"]
    assert all(a.site_url for a in settings.accounts)


def test_presence_provider_found_at_any_depth_and_ucc_siblings_ignored(tmp_path: Path, state: Path,
                                                                        keys: KeyStore) -> None:
    text = f"""<Root xmlns="urn:example:ucc">
  <A Foo="bar"><B><C><D>
    <Other Unknown="1"/>
    <E><PresenceProvider><MsGraphPresenceSource enabled="TRUE"><Accounts>
{app_account(keys)}
    </Accounts></MsGraphPresenceSource></PresenceProvider></E>
  </D></C></B></A>
</Root>"""
    settings, warnings = load(write(tmp_path, text), state)
    assert [a.id for a in settings.accounts] == ["contoso.com"] and warnings == []


# --- problems: each class with file:line:attribute ---------------------------------------------------------------


def test_non_guid_tenant_message_format(tmp_path: Path, state: Path) -> None:
    text = xml(f'          <Account Id="a" ClientId="{APP}" TenantId="abc"/>')
    (problem,) = problems_of(write(tmp_path, text), state)
    line = line_of(text, 'TenantId="abc"')
    assert str(problem) == (f"{tmp_path / 'config.xml'}:{line}: Account/@TenantId: 'abc' is not a GUID. Copy the "
                            "Directory (tenant) ID from the app registration's Overview page.")


@pytest.mark.parametrize(
    ("account", "marker", "attribute", "words"),
    [
        (f'<Account Id="a" ClientId="{APP}"/>', 'Id="a"', "Account/@TenantId", "missing. Copy the Directory"),
        (f'<Account Id="a" TenantId="{TENANT}"/>', 'Id="a"', "Account/@ClientId", "missing. Copy the Application"),
        (f'<Account Id="a" TenantId="{TENANT}"\n ClientId="{{{APP}}}"/>', "ClientId=", "Account/@ClientId",
         "is not a GUID"),
        (f'<Account ClientId="{APP}" TenantId="{TENANT}"/>', "<Account ClientId", "Account/@Id", "missing"),
        (f'<Account Id="a" ClientId="{PUBLIC}" TenantId="{TENANT}"\n Username="svc presence@contoso.com"\n'
         ' EncryptedPassword="@PASSWORD@"/>', "Username=", "Account/@Username", "whitespace"),
        (f'<Account Id="a" ClientId="{PUBLIC}" TenantId="{TENANT}" Username="svc&quot;x@contoso.com" '
         'EncryptedPassword="@PASSWORD@"/>', "Username=", "Account/@Username", "a double quote"),
        (f'<Account Id="a" ClientId="{PUBLIC}" TenantId="{TENANT}" Username="svc`x@contoso.com" '
         'EncryptedPassword="@PASSWORD@"/>', "Username=", "Account/@Username", "a backtick"),
        (f'<Account Id="a" ClientId="{PUBLIC}" TenantId="{TENANT}" Username="svc%x@contoso.com" '
         'EncryptedPassword="@PASSWORD@"/>', "Username=", "Account/@Username", "a percent sign"),
        (f'<Account Id="a" ClientId="{PUBLIC}" TenantId="{TENANT}"\n Username="svc@contoso.com"/>', "Username=",
         "Account/@Username", "without EncryptedPassword"),
        (f'<Account Id="a" ClientId="{PUBLIC}" TenantId="{TENANT}"\n EncryptedPassword="@PASSWORD@"/>',
         "EncryptedPassword=", "Account/@EncryptedPassword", "without Username"),
        (f'<Account Id="a" ClientId="{APP}" TenantId="{TENANT}" EncryptedSecret="@SECRET@"\n'
         ' Username="svc@contoso.com" EncryptedPassword="@PASSWORD@"/>', "Username=", "Account/@Username",
         "together with a client secret"),
        (f'<Account Id="a" ClientId="{APP}" TenantId="{TENANT}"\n AuthorityHost="http://login.example.com"/>',
         "AuthorityHost=", "Account/@AuthorityHost", "is not an https URL"),
        (f'<Account Id="a" ClientId="{APP}" TenantId="{TENANT}"\n AuthorityHost="https://login.x.com/{TENANT}"/>',
         "AuthorityHost=", "Account/@AuthorityHost", "bare https://host"),
        (f'<Account Id="a" ClientId="{APP}" TenantId="{TENANT}"\n GraphUrl="https://graph.microsoft.com/v1.0"/>',
         "GraphUrl=", "Account/@GraphUrl", "API version"),
        (f'<Account Id="a" ClientId="{APP}" TenantId="{TENANT}">\n<AgentList\n SiteUrl="ftp://x/sites/a"/>'
         "</Account>", "SiteUrl=", "AgentList/@SiteUrl", "is not an https URL"),
        (f'<Account Id="a" ClientId="{APP}" TenantId="{TENANT}" Enabled="maybe"/>', "Enabled=",
         "Account/@Enabled", "not true or false"),
    ],
)
def test_each_problem_names_line_and_attribute(tmp_path: Path, state: Path, keys: KeyStore, account: str,
                                               marker: str, attribute: str, words: str) -> None:
    account = account.replace("@PASSWORD@", keys.encrypt(PASSWORD)).replace("@SECRET@", keys.encrypt(CLIENT_SECRET))
    text = xml(account)
    problems = problems_of(write(tmp_path, text), state)
    assert [(p.line, p.attribute) for p in problems] == [(line_of(text, marker), attribute)]
    assert words in str(problems[0])
    assert problems[0].file == str(tmp_path / "config.xml")


def test_forbidden_characters_in_the_password_are_named_not_shown(tmp_path: Path, state: Path,
                                                                   keys: KeyStore) -> None:
    bad = "Zq9 Known%Xy"
    text = xml(f'<Account Id="a" ClientId="{PUBLIC}" TenantId="{TENANT}" Username="svc@contoso.com"\n'
               f' EncryptedPassword="{keys.encrypt(bad)}"/>')
    (problem,) = problems_of(write(tmp_path, text), state)
    assert (problem.line, problem.attribute) == (line_of(text, "EncryptedPassword="), "Account/@EncryptedPassword")
    assert "a percent sign (%)" in problem.message and "whitespace" in problem.message
    assert "Zq9" not in str(problem) and "Known" not in str(problem)


def test_values_that_do_not_decrypt(tmp_path: Path, state: Path, keys: KeyStore) -> None:
    foreign = KeyStore(tmp_path / "other-state", env={}).encrypt(CLIENT_SECRET)
    damaged = keys.encrypt(PASSWORD)[:-3] + "AAA"
    text = xml(
        f'<Account Id="a" ClientId="{APP}" TenantId="{TENANT}"\n EncryptedSecret="{foreign}"/>',
        f'<Account Id="b" ClientId="{APP}" TenantId="{TENANT}"\n EncryptedSecret="{CLIENT_SECRET}"/>',
        f'<Account Id="c" ClientId="{PUBLIC}" TenantId="{TENANT}" Username="svc@contoso.com"\n'
        f' EncryptedPassword="{damaged}"/>',
    )
    problems = problems_of(write(tmp_path, text), state)
    assert [(p.line, p.attribute) for p in problems] == [
        (line_of(text, foreign), "Account/@EncryptedSecret"),
        (line_of(text, f'EncryptedSecret="{CLIENT_SECRET}"'), "Account/@EncryptedSecret"),
        (line_of(text, damaged), "Account/@EncryptedPassword"),
    ]
    key_path = state / "secret.key"
    assert problems[0].message == (f"does not decrypt with the key in {key_path}; re-run `presence-sync "
                                   "encrypt-secret` with the same --state-dir.")
    assert "is not an encrypted value" in problems[1].message
    assert "does not decrypt with the key" in problems[2].message
    shown = "\n".join(str(p) for p in problems)
    assert CLIENT_SECRET not in shown and PASSWORD not in shown and foreign not in shown


def test_no_key_file_is_explained(tmp_path: Path, state: Path) -> None:
    token = KeyStore(tmp_path / "elsewhere", env={}).encrypt(CLIENT_SECRET)
    text = xml(f'<Account Id="a" ClientId="{APP}" TenantId="{TENANT}" EncryptedSecret="{token}"/>')
    (problem,) = problems_of(write(tmp_path, text), state)
    assert f"no key file at {state / 'secret.key'}" in problem.message
    assert not (state / "secret.key").exists()  # loading config never mints a key


def test_duplicate_ids_name_both_lines(tmp_path: Path, state: Path) -> None:
    text = xml(f'<Account Id="contoso.com" ClientId="{PUBLIC}" TenantId="{TENANT}"/>',
               f'<Account Id="CONTOSO.com"\n ClientId="{PUBLIC}" TenantId="{TENANT}"/>')
    (problem,) = problems_of(write(tmp_path, text), state)
    first, second = line_of(text, 'Id="contoso.com"'), line_of(text, 'Id="CONTOSO.com"')
    assert (problem.line, problem.attribute) == (second, "Account/@Id")
    assert f"lines {first} and {second}" in problem.message


def test_source_switched_off_means_no_enabled_account(tmp_path: Path, state: Path) -> None:
    text = xml(f'<Account Id="a" ClientId="{PUBLIC}" TenantId="{TENANT}"/>', source='\n enabled="false"')
    (problem,) = problems_of(write(tmp_path, text), state)
    assert (problem.line, problem.attribute) == (line_of(text, 'enabled="false"'), "MsGraphPresenceSource/@enabled")
    assert "no account is enabled" in problem.message


@pytest.mark.parametrize(
    ("text", "attribute", "words"),
    [
        (xml(), "Accounts", "no <Account> element"),
        (xml(f'<Account Id="a" ClientId="{PUBLIC}" TenantId="{TENANT}" Enabled="false"/>'), "Account/@Enabled",
         "none is enabled"),
        ("<Ucc><PresenceProvider/></Ucc>", "MsGraphPresenceSource", "no <PresenceProvider><MsGraphPresenceSource>"),
        ("<Ucc><MsGraphPresenceSource/></Ucc>", "MsGraphPresenceSource", "not a child of <PresenceProvider>"),
    ],
)
def test_no_enabled_account(tmp_path: Path, state: Path, text: str, attribute: str, words: str) -> None:
    (problem,) = problems_of(write(tmp_path, text), state)
    assert problem.attribute == attribute and words in problem.message


def test_malformed_xml_gives_line_and_column(tmp_path: Path, state: Path) -> None:
    text = xml(f'<Account Id="a" ClientId="{PUBLIC}" TenantId="{TENANT}">\n</Acount>')
    (problem,) = problems_of(write(tmp_path, text), state)
    assert problem.line == line_of(text, "</Acount>")
    assert "malformed XML at column 3: mismatched tag" in problem.message


def test_billion_laughs_is_refused_without_expansion(tmp_path: Path, state: Path) -> None:
    lols = "\n".join(f' <!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, 10))
    text = f"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol0 "lol">
{lols}
]>
<Ucc><PresenceProvider><MsGraphPresenceSource><Accounts>
  <Account Id="&lol9;" ClientId="{APP}" TenantId="{TENANT}"/>
</Accounts></MsGraphPresenceSource></PresenceProvider></Ucc>"""
    started = time.perf_counter()
    (problem,) = problems_of(write(tmp_path, text), state)
    assert time.perf_counter() - started < 1.0  # 10**9 "lol"s would take far longer (and gigabytes)
    assert (problem.line, problem.attribute) == (2, "")
    assert "DTD" in problem.message and "lollol" not in str(problem)


def test_external_entity_is_refused_without_reading_the_file(tmp_path: Path, state: Path) -> None:
    private = tmp_path / "private.txt"
    private.write_text("TOP-SECRET-CONTENT")
    text = f"""<?xml version="1.0"?>
<!DOCTYPE Ucc [ <!ENTITY leak SYSTEM "{private.as_uri()}"> ]>
<Ucc><PresenceProvider><MsGraphPresenceSource><Accounts>
  <Account Id="&leak;" ClientId="{APP}" TenantId="{TENANT}"/>
</Accounts></MsGraphPresenceSource></PresenceProvider></Ucc>"""
    (problem,) = problems_of(write(tmp_path, text), state)
    assert problem.line == 2 and "DTDs and entities are not allowed" in problem.message
    assert "TOP-SECRET" not in str(problem)


def test_unreadable_and_missing_config(tmp_path: Path, state: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (problem,) = problems_of(tmp_path / "nope.xml", state)
    assert problem.file == str(tmp_path / "nope.xml") and "cannot be read" in problem.message
    monkeypatch.chdir(tmp_path)
    (problem,) = problems_of(None, state)  # type: ignore[arg-type]
    assert problem.attribute == "--config" and "PRESENCE_SYNC_CONFIG" in problem.hint


def test_config_path_falls_back_to_the_working_directory(tmp_path: Path, state: Path, keys: KeyStore,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path, xml(app_account(keys, "from-cwd")))
    other = write(tmp_path, xml(app_account(keys, "from-env")), "other.xml")
    monkeypatch.chdir(tmp_path)
    assert [a.id for a in load(None, state)[0].accounts] == ["from-cwd"]
    assert [a.id for a in load(None, state, env={"PRESENCE_SYNC_CONFIG": str(other)})[0].accounts] == ["from-env"]


def test_every_problem_is_reported_at_once(tmp_path: Path, state: Path) -> None:
    text = xml(
        f'<Account Id="a" ClientId="not-a-guid" TenantId="{TENANT}"/>',
        f'<Account Id="b" ClientId="{PUBLIC}" TenantId="also-not"\n Username="svc x@contoso.com"/>',
        f'<Account Id="a" ClientId="{PUBLIC}" TenantId="{TENANT}"/>',
    )
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load(path, state)
    lines = str(err.value).splitlines()
    assert len(lines) == 5
    assert [(p.line, p.attribute) for p in err.value.problems] == [
        (line_of(text, "not-a-guid"), "Account/@ClientId"),
        (line_of(text, "also-not"), "Account/@TenantId"),
        (line_of(text, "svc x@"), "Account/@Username"),  # forbidden whitespace
        (line_of(text, "svc x@"), "Account/@Username"),  # no EncryptedPassword
        (text.splitlines().index(next(x for x in text.splitlines() if 'Id="a"' in x and PUBLIC in x)) + 1,
         "Account/@Id"),
    ]
    assert all(line.startswith(f"{path}:") for line in lines)


# --- warnings ----------------------------------------------------------------------------------------------------


def test_unknown_attributes_and_elements_are_warnings(tmp_path: Path, state: Path, keys: KeyStore) -> None:
    account = app_account(keys, inner='\n            <Agents List="x"/>').replace(
        f'TenantId="{TENANT}"', f'TenantId="{TENANT}"\n                   tenantid="dup" Colour="blue"')
    text = xml(account, extra='\n        <WriteBack Availabilty="Avail"/>')
    settings, warnings = load(write(tmp_path, text), state)
    assert settings.accounts[0].tenant_id == TENANT
    got = {(w.line, w.attribute) for w in warnings}
    assert got == {
        (line_of(text, "Colour="), "Account/@tenantid"),
        (line_of(text, "Colour="), "Account/@Colour"),
        (line_of(text, "<Agents "), "Agents"),
        (line_of(text, "Availabilty="), "WriteBack/@Availabilty"),
    }
    by_attr = {w.attribute: w for w in warnings}
    assert "Did you mean 'TenantId'?" in by_attr["Account/@tenantid"].hint
    assert all(w.severity == "warning" and w.file == str(tmp_path / "config.xml") for w in warnings)


def test_china_cloud_warns_that_presence_is_missing(tmp_path: Path, state: Path) -> None:
    china = NATIONAL_CLOUDS["china"]
    text = xml(f'<Account Id="cn" ClientId="{PUBLIC}" TenantId="{TENANT}" AuthorityHost="{china.authority_host}"'
               f'\n GraphUrl="{china.graph_url}"/>')
    settings, warnings = load(write(tmp_path, text), state)
    assert settings.accounts[0].graph_url == "https://microsoftgraph.chinacloudapi.cn"
    assert [(w.line, w.attribute) for w in warnings] == [(line_of(text, "GraphUrl="), "Account/@GraphUrl")]
    assert "not available" in warnings[0].message


def test_national_clouds_table() -> None:
    table = {k: (c.authority_host, c.graph_url, c.presence_available) for k, c in NATIONAL_CLOUDS.items()}
    assert table == {
        "global": ("https://login.microsoftonline.com", "https://graph.microsoft.com", True),
        "usgov-l4": ("https://login.microsoftonline.us", "https://graph.microsoft.us", True),
        "usgov-l5": ("https://login.microsoftonline.us", "https://dod-graph.microsoft.us", True),
        "china": ("https://login.chinacloudapi.cn", "https://microsoftgraph.chinacloudapi.cn", False),
    }


# --- precedence --------------------------------------------------------------------------------------------------


def test_precedence_flag_env_dotenv_xml_default(tmp_path: Path, state: Path, keys: KeyStore) -> None:
    with_xml = write(tmp_path, xml(app_account(keys), source='enabled="true" Interval="4" OutDir="xml-out"'),
                     "with.xml")
    plain = write(tmp_path, xml(app_account(keys)), "plain.xml")
    dotenv = tmp_path / ".env"
    dotenv.write_text("PRESENCE_SYNC_INTERVAL=3\nPRESENCE_SYNC_OUT=/dotenv-out\nPRESENCE_SYNC_LOG_FORMAT=json\n")
    env = {"PRESENCE_SYNC_INTERVAL": "2", "PRESENCE_SYNC_OUT": "/env-out"}

    s = load(with_xml, state, overrides={"interval": 1.0, "out_dir": Path("/flag-out")}, env=env, dotenv=dotenv)[0]
    assert (s.interval, s.out_dir, s.log_format) == (1.0, Path("/flag-out"), "json")
    s = load(with_xml, state, overrides={"interval": None, "out_dir": None}, env=env, dotenv=dotenv)[0]
    assert (s.interval, s.out_dir) == (2.0, Path("/env-out"))  # None = flag not given; env beats .env
    s = load(with_xml, state, env={}, dotenv=dotenv)[0]
    assert (s.interval, s.out_dir) == (3.0, Path("/dotenv-out"))
    s = load(with_xml, state, env={})[0]
    assert (s.interval, s.out_dir, s.log_format) == (4.0, tmp_path / "xml-out", "text")  # relative to the file
    s = load(plain, state, env={})[0]
    assert (s.interval, s.out_dir) == (5.0, Path("out"))


def test_config_path_and_state_dir_from_env_and_dotenv(tmp_path: Path, keys: KeyStore, state: Path) -> None:
    path = write(tmp_path, xml(app_account(keys)))
    dotenv = tmp_path / "dev.env"
    dotenv.write_text(f"PRESENCE_SYNC_CONFIG={path}\nPRESENCE_SYNC_STATE_DIR={state}\n")
    settings, _ = load_settings(None, {}, env={"HOME": str(tmp_path)}, dotenv_path=dotenv)
    assert settings.config_path == path and settings.state_dir == state
    assert settings.accounts[0].secret_value() == CLIENT_SECRET


def test_key_file_from_dotenv_decrypts(tmp_path: Path, state: Path) -> None:
    mounted = KeyStore(tmp_path / "mounted", env={})
    text = xml(f'<Account Id="a" ClientId="{APP}" TenantId="{TENANT}" EncryptedSecret="{mounted.encrypt(CLIENT_SECRET)}"/>')
    dotenv = tmp_path / ".env"
    dotenv.write_text(f"PRESENCE_SYNC_KEY_FILE={mounted.path}\n")
    settings, _ = load(write(tmp_path, text), state, dotenv=dotenv)
    assert settings.key_file == mounted.path and settings.accounts[0].secret_value() == CLIENT_SECRET
    assert not state.exists()


def test_default_state_dir_honours_xdg() -> None:
    assert default_state_dir({"XDG_STATE_HOME": "/x/state", "HOME": "/h"}) == Path("/x/state/presence-sync")
    assert default_state_dir({"HOME": "/h"}) == Path("/h/.local/state/presence-sync")


def test_dotenv_plain_secrets_for_development(tmp_path: Path, state: Path) -> None:
    text = xml(f'<Account Id="contoso.com" ClientId="{APP}" TenantId="{TENANT}" EncryptedSecret="placeholder"/>',
               f'<Account Id="svc-1" ClientId="{PUBLIC}" TenantId="{TENANT}" Username="svc@contoso.com"/>')
    dotenv = tmp_path / ".env"
    dotenv.write_text(f"PRESENCE_SYNC_SECRET__CONTOSO_COM={CLIENT_SECRET}\n"
                      f"PRESENCE_SYNC_PASSWORD__SVC_1={PASSWORD}\nPRESENCE_SYNC_SECRET__NOBODY=x\n")
    assert env_name("contoso.com") == "CONTOSO_COM"
    settings, warnings = load(write(tmp_path, text), state, dotenv=dotenv)
    app, svc = settings.accounts
    assert (app.auth, app.secret_value()) == ("secret", CLIENT_SECRET)
    assert (svc.auth, svc.password_value()) == ("password", PASSWORD)
    assert [(w.file, w.attribute) for w in warnings] == [("environment", "PRESENCE_SYNC_SECRET__NOBODY")]
    # The real environment wins over .env.
    settings, _ = load(write(tmp_path, text), state, dotenv=dotenv, env={"PRESENCE_SYNC_SECRET__CONTOSO_COM": "real"})
    assert settings.accounts[0].secret_value() == "real"


def test_flags_that_only_the_command_line_sets(tmp_path: Path, state: Path, keys: KeyStore) -> None:
    path = write(tmp_path, xml(app_account(keys), app_account(keys, "fabrikam.com")))
    s = load(path, state, overrides={"once": True, "dry_run": True, "account_filter": "FABRIKAM.com"})[0]
    assert s.once and s.dry_run and [a.id for a in s.active_accounts] == ["fabrikam.com"]
    with pytest.raises(ConfigError) as err:
        load(path, state, overrides={"account_filter": ["nope"]})
    assert str(err.value) == "command line: --account: no Account with Id 'nope'. Known Ids: contoso.com, fabrikam.com."
    with pytest.raises(ValueError):
        load(path, state, overrides={"intervall": 3})


# --- secrecy -----------------------------------------------------------------------------------------------------


def test_secrets_never_appear_in_repr_or_errors(tmp_path: Path, state: Path, keys: KeyStore) -> None:
    secret = Secret(CLIENT_SECRET)
    assert repr(secret) == str(secret) == f"{secret}" == f"{secret:>10}" == "***"
    path = write(tmp_path, xml(app_account(keys), f"""<Account Id="p" ClientId="{PUBLIC}" TenantId="{TENANT}"
        Username="svc@contoso.com" EncryptedPassword="{keys.encrypt(PASSWORD)}"/>"""))
    settings, _ = load(path, state)
    shown = repr(settings) + str(settings) + repr(settings.accounts)
    assert CLIENT_SECRET not in shown and PASSWORD not in shown and "***" in shown
    # A config that fails, with the same secrets pasted in clear and in a password that breaks the rule.
    bad = write(tmp_path, xml(
        f'<Account Id="a" ClientId="{APP}" TenantId="x" EncryptedSecret="{CLIENT_SECRET}"/>',
        f'<Account Id="b" ClientId="{PUBLIC}" TenantId="{TENANT}" Username="svc@contoso.com" '
        f'EncryptedPassword="{keys.encrypt(PASSWORD + " %")}"/>'), "bad.xml")
    with pytest.raises(ConfigError) as err:
        load(bad, state)
    text = str(err.value) + repr(err.value.problems)
    assert [p.attribute for p in err.value.problems] == [
        "Account/@TenantId", "Account/@EncryptedSecret", "Account/@EncryptedPassword"]
    assert CLIENT_SECRET not in text and PASSWORD not in text
