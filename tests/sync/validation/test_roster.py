"""UPN validation rules (sync.validation) with plain values, and the fixtures' answer key."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sync.models import AgentRow, DirectoryUser, ValidationRow
from sync.validation import (
    DirectoryIndex,
    Domains,
    Validator,
    is_valid_upn,
    normalize,
    summarize,
    validate,
)

DOMAINS = Domains.from_graph(
    [
        {"id": "contoso.onmicrosoft.com", "isVerified": True},
        {"id": "Contoso.com", "isVerified": True},
        {"id": "contoso.co.uk", "isVerified": True},
        {"id": "contoso-sales.com", "isVerified": False},
    ]
)
GUEST_UPN = "megan_fabrikam.com#EXT#@contoso.onmicrosoft.com"
USERS = [
    DirectoryUser(
        "id-john",
        "John.Doe@contoso.com",
        "John Doe",
        "john.doe@contoso.com",
        ("SMTP:john.doe@contoso.com", "smtp:jdoe@contoso.co.uk", "SIP:john.doe@contoso.com"),
    ),
    DirectoryUser(
        "id-adele",
        "adele.vance@contoso.com",
        "Adele Vance",
        "Adele@contoso.com",
        ("SMTP:adele@contoso.com", "SIP:adele.sip@contoso.com", "x500:/o=ExchangeLabs/cn=adele"),
        ("sip:adele.im@contoso.com",),
    ),
    DirectoryUser("id-alex1", "alex.wilber@contoso.com", "Alex Wilber"),
    DirectoryUser("id-alex2", "alex.wilber2@contoso.co.uk", "Alex  Wilber"),
    DirectoryUser(
        "id-megan",
        GUEST_UPN,
        "Megan Bowen (Fabrikam)",
        "megan@fabrikam.com",
        ("SMTP:megan@fabrikam.com",),
        user_type="Guest",
    ),
    DirectoryUser("id-old", "old.agent@contoso.com", "Old Agent", account_enabled=False),
    DirectoryUser("id-jose", "jose.garcia@contoso.com", "José García"),
    DirectoryUser("id-patti", "patti.fernandez@contoso.com", "Patti Fernandez"),
    DirectoryUser("id-lee", "lee.gu@contoso.co.uk", "Lee Gu"),
    DirectoryUser("id-ann1", "ann.a@contoso.com", "Ann A", proxy_addresses=("smtp:team@contoso.com",)),
    DirectoryUser("id-ann2", "ann.b@contoso.com", "Ann B", proxy_addresses=("smtp:team@contoso.com",)),
    DirectoryUser("id-bad", "bad user@contoso.com", "Bad User"),
]
INDEX = DirectoryIndex.build(USERS)


def check(raw: str | None) -> ValidationRow:
    [row] = validate([AgentRow(1, raw)], DOMAINS, INDEX)
    return row


def verdict(raw: str | None) -> tuple[str, str, tuple[str, ...], str, str]:
    row = check(raw)
    return row.normalized_upn, row.status, row.codes, row.severity, row.suggestion


# ---- ok and text steps ---------------------------------------------------------------------------------------


def test_exact_upn_is_ok_and_carries_user_id() -> None:
    row = check("adele.vance@contoso.com")
    assert (row.normalized_upn, row.status, row.codes, row.severity, row.suggestion) == (
        "adele.vance@contoso.com",
        "ok",
        (),
        "",
        "",
    )
    assert row.user_id == "id-adele" and row.collectable


def test_case_alone_is_not_a_finding() -> None:
    assert verdict("John.Doe@Contoso.COM") == ("john.doe@contoso.com", "ok", (), "", "")


@pytest.mark.parametrize("raw", [None, "", "   ", "\t\n", "\u00a0", "\u200b\ufeff", "\u3000"])
def test_empty(raw: str | None) -> None:
    row = check(raw)
    assert (row.normalized_upn, row.status, row.codes, row.severity, row.user_id) == (
        "",
        "invalid",
        ("EMPTY",),
        "error",
        None,
    )


@pytest.mark.parametrize(
    "raw",
    [
        " john.doe@contoso.com",
        "john.doe@contoso.com\t",
        "\u00a0john.doe@contoso.com\u00a0",
        "\u200bjohn.doe@contoso.com",
        "\ufeffjohn.doe@contoso.com\r\n",
    ],
)
def test_surrounding_whitespace_is_trimmed(raw: str) -> None:
    assert verdict(raw) == ("john.doe@contoso.com", "fixed", ("WHITESPACE",), "warning", "")


def test_inner_whitespace_is_not_trimmed() -> None:
    assert verdict("john .doe@contoso.com")[1:4] == ("invalid", ("SYNTAX",), "error")
    assert verdict("john.doe@contoso.com\u200bx")[2] == ("SYNTAX",)  # inner zero-width space


def test_inner_nbsp_becomes_a_space_and_a_display_name() -> None:
    assert verdict("John\u00a0Doe") == (
        "",
        "invalid",
        ("UNICODE", "DISPLAY_NAME"),
        "error",
        "john.doe@contoso.com",
    )


def test_full_width_letters_are_normalised() -> None:
    raw = "ｊｏｈｎ．ｄｏｅ＠ｃｏｎｔｏｓｏ．ｃｏｍ"
    assert verdict(raw) == ("john.doe@contoso.com", "fixed", ("UNICODE",), "warning", "")
    assert verdict("\u00a0" + raw)[2] == ("WHITESPACE", "UNICODE")


def test_ligature_is_normalised() -> None:
    assert verdict("patti.ﬁ@contoso.com")[2] == ("UNICODE", "NOT_FOUND")  # ﬁ -> fi


@pytest.mark.parametrize("prefix", ["sip:", "SIP:", "Sip:", "mailto:", "MAILTO:", "smtp:", "SMTP:"])
def test_prefix_in_any_case(prefix: str) -> None:
    assert verdict(prefix + "John.Doe@contoso.com") == (
        "john.doe@contoso.com",
        "fixed",
        ("PREFIX",),
        "warning",
        "",
    )


def test_prefix_is_removed_after_trimming_and_a_repeated_one_is_its_own_warning() -> None:
    assert verdict("  mailto:john.doe@contoso.com ")[2] == ("WHITESPACE", "PREFIX")
    assert verdict("sip:sip:john.doe@contoso.com")[1:3] == ("fixed", ("PREFIX", "REPEATED_PREFIX"))


def test_normalize_reports_text_steps_only() -> None:
    assert normalize(None) == ("", ("EMPTY",))
    assert normalize(" \u00a0") == ("", ("EMPTY",))
    assert normalize(" SIP:ＪＯＨＮ@x.com") == ("john@x.com", ("WHITESPACE", "UNICODE", "PREFIX"))
    assert normalize("No Such@Thing") == ("no such@thing", ())


# ---- display names and syntax --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "suggestion"),
    [
        ("John Doe", "john.doe@contoso.com"),
        ("john   DOE", "john.doe@contoso.com"),
        ("Doe, John", "john.doe@contoso.com"),
        ("Doe,John", "john.doe@contoso.com"),
        ("José García", "jose.garcia@contoso.com"),
        ("García, José", "jose.garcia@contoso.com"),
        ("Nobody Here", ""),
        ("Alex Wilber", ""),  # two users are called that: no guess
        ("Wilber, Alex", ""),
    ],
)
def test_display_name(raw: str, suggestion: str) -> None:
    assert verdict(raw) == ("", "invalid", ("DISPLAY_NAME",), "error", suggestion)


def test_display_name_with_prefix_or_non_letters() -> None:
    assert verdict("sip:John Doe")[2] == ("PREFIX", "DISPLAY_NAME")
    assert verdict("John Doe 2")[2] == ("SYNTAX",)  # digits: not a display name
    assert verdict("john doe@contoso.com")[2] == ("SYNTAX",)  # has "@": not a display name


@pytest.mark.parametrize(
    ("raw", "suggestion"),
    [
        ("john.doe@@contoso.com", "john.doe@contoso.com"),  # doubled "@" repaired
        ("john@doe@contoso.com", ""),
        ("@contoso.com", ""),
        ("john.doe@", "john.doe@contoso.com"),  # no domain: the local part is unique
        ("contoso.com", ""),
        ("a" * 65 + "@contoso.com", ""),
        (".john@contoso.com", ""),
        ("john.@contoso.com", ""),
        ("jo..hn@contoso.com", ""),
        ("john+x@contoso.com", ""),
        ("john(doe)@contoso.com", ""),
        ("john.doe@contoso..com", "john.doe@contoso.com"),  # doubled dot repaired
        ("john.doe@.contoso.com", "john.doe@contoso.com"),
        ("john.doe@contoso_com", ""),
        ("sip:", ""),
    ],
)
def test_syntax(raw: str, suggestion: str) -> None:
    assert verdict(raw) == (
        "",
        "invalid",
        ("SYNTAX",) if raw != "sip:" else ("PREFIX", "SYNTAX"),
        "error",
        suggestion,
    )


def test_syntax_allows_the_documented_local_characters() -> None:
    assert is_valid_upn("o'neil.x-y_z!#^~@contoso.com")
    assert is_valid_upn("a" * 64 + "@contoso.com")
    assert not is_valid_upn("a" * 65 + "@contoso.com")
    assert verdict("O'Neil@contoso.com")[2] == ("NOT_FOUND",)  # syntax passed


@pytest.mark.parametrize(
    ("raw", "suggestion"),
    [
        ("josé.garcía@contoso.com", "jose.garcia@contoso.com"),  # diacritics removed
        ("John.Doe@contöso.com", "john.doe@contoso.com"),  # non-ASCII domain fails syntax
        ("patti.fernandez", "patti.fernandez@contoso.com"),  # no "@": local part
        ("José.García", "jose.garcia@contoso.com"),
        ("alex.wilber", "alex.wilber@contoso.com"),
        ("nobody", ""),
        ("ann a@contoso.com", "ann.a@contoso.com"),  # inner space read as a separator
    ],
)
def test_syntax_suggestions(raw: str, suggestion: str) -> None:
    assert verdict(raw) == ("", "invalid", ("SYNTAX",), "error", suggestion)


def test_syntax_is_checked_before_the_domain() -> None:
    assert verdict("john..doe@gmail.com")[2] == ("SYNTAX",)


# ---- domains -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "suggestion"),
    [
        ("megan@fabrikam.com", GUEST_UPN.lower()),  # a guest's home address
        ("MEGAN@Fabrikam.com", GUEST_UPN.lower()),
        ("john.doe@gmail.com", "john.doe@contoso.com"),  # by local part
        ("alex.wilber@contoso.org", "alex.wilber@contoso.com"),
        ("nobody@gmail.com", ""),
        ("john.doe@sales.contoso.com", "john.doe@contoso.com"),  # subdomains are not tenant domains
    ],
)
def test_unknown_domain(raw: str, suggestion: str) -> None:
    assert verdict(raw) == ("", "invalid", ("UNKNOWN_DOMAIN",), "error", suggestion)


def test_unverified_domain() -> None:
    assert verdict(" John.Doe@Contoso-Sales.com") == (
        "",
        "invalid",
        ("WHITESPACE", "UNVERIFIED_DOMAIN"),
        "error",
        "john.doe@contoso.com",
    )
    assert verdict("nobody@contoso-sales.com")[2:] == (("UNVERIFIED_DOMAIN",), "error", "")


def test_domains_from_graph() -> None:
    assert DOMAINS.verified == frozenset({"contoso.onmicrosoft.com", "contoso.com", "contoso.co.uk"})
    assert DOMAINS.unverified == frozenset({"contoso-sales.com"})


# ---- directory -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "upn", "codes"),
    [
        ("adele@contoso.com", "adele.vance@contoso.com", ("NOT_UPN",)),  # mail
        ("jdoe@contoso.co.uk", "john.doe@contoso.com", ("NOT_UPN",)),  # smtp: proxy
        ("adele.sip@contoso.com", "adele.vance@contoso.com", ("NOT_UPN",)),  # SIP: proxy
        ("Adele.IM@contoso.com", "adele.vance@contoso.com", ("NOT_UPN",)),  # imAddress
        ("sip:adele.sip@contoso.com", "adele.vance@contoso.com", ("PREFIX", "NOT_UPN")),
    ],
)
def test_not_upn(raw: str, upn: str, codes: tuple[str, ...]) -> None:
    row = check(raw)
    assert (row.normalized_upn, row.status, row.codes, row.severity, row.suggestion) == (
        upn,
        "fixed",
        codes,
        "warning",
        upn,
    )
    assert row.user_id == "id-adele" if upn.startswith("adele") else "id-john"


def test_not_found() -> None:
    assert verdict("lee.gu@contoso.com") == ("", "invalid", ("NOT_FOUND",), "error", "lee.gu@contoso.co.uk")
    assert verdict("ghost@contoso.com") == ("", "invalid", ("NOT_FOUND",), "error", "")


def test_address_shared_by_two_users_resolves_to_nobody() -> None:
    assert verdict("team@contoso.com") == ("", "invalid", ("NOT_FOUND",), "error", "")


def test_x500_proxy_is_not_an_address() -> None:
    assert not INDEX.addresses("/o=exchangelabs/cn=adele")


def test_guest_is_collected_with_a_warning() -> None:
    row = check(GUEST_UPN.upper())
    assert (row.normalized_upn, row.status, row.codes, row.severity, row.suggestion, row.user_id) == (
        GUEST_UPN.lower(),
        "fixed",
        ("GUEST",),
        "warning",
        "",
        "id-megan",
    )


def test_disabled_is_collected_with_a_warning() -> None:
    row = check("sip:Old.Agent@contoso.com")
    assert (row.normalized_upn, row.status, row.codes, row.user_id) == (
        "old.agent@contoso.com",
        "fixed",
        ("PREFIX", "DISABLED"),
        "id-old",
    )


def test_user_with_an_invalid_upn_is_never_resolved() -> None:
    assert [u.id for u in INDEX.skipped] == ["id-bad"]
    assert "bad user@contoso.com" not in INDEX.by_upn


# ---- duplicates, ordering, summaries, memo ---------------------------------------------------------------------


def test_duplicate_only_on_later_items_by_item_id() -> None:
    rows = [
        AgentRow(7, "john.doe@contoso.com"),
        AgentRow(3, " JOHN.DOE@contoso.com"),
        AgentRow(5, "sip:jdoe@contoso.co.uk"),
        AgentRow(4, ""),
        AgentRow(6, None),
        AgentRow(8, "adele@contoso.com"),
        AgentRow(9, "Adele.Vance@contoso.com"),
    ]
    out = {r.item_id: r for r in validate(rows, DOMAINS, INDEX)}
    assert [r.item_id for r in validate(rows, DOMAINS, INDEX)] == [3, 4, 5, 6, 7, 8, 9]
    assert out[3].codes == ("WHITESPACE",)
    assert out[5].codes == ("PREFIX", "NOT_UPN", "DUPLICATE") and out[5].suggestion == "john.doe@contoso.com"
    assert (out[7].codes, out[7].status, out[7].severity) == (("DUPLICATE",), "fixed", "warning")
    assert out[4].codes == out[6].codes == ("EMPTY",)  # invalid rows are never duplicates
    assert out[8].codes == ("NOT_UPN",) and out[9].codes == ("DUPLICATE",)
    assert all(r.user_id for r in out.values() if r.collectable)
    assert summarize(out.values()) == {
        "EMPTY": 2,
        "WHITESPACE": 1,
        "PREFIX": 1,
        "NOT_UPN": 2,
        "DUPLICATE": 3,
    }


def test_validator_memo_gives_the_same_answer_and_follows_changes() -> None:
    rows = [
        AgentRow(i, raw) for i, raw in enumerate(["John Doe", "adele@contoso.com", "x@contoso.com", None], 1)
    ]
    memo = Validator(DOMAINS, INDEX)
    first = memo.validate(rows)
    assert first == validate(rows, DOMAINS, INDEX)
    assert memo.validate(rows) == first  # same objects
    assert memo.validate(list(reversed([AgentRow(r.item_id, r.raw_upn) for r in rows]))) == first
    changed = [*rows[:2], AgentRow(3, "john.doe@contoso.com"), AgentRow(4, "sip:adele.vance@contoso.com")]
    again = memo.validate(changed)
    assert again[2].status == "ok" and again[3].codes == ("PREFIX", "DUPLICATE")
    assert memo.validate(rows) == first


def test_normalized_upns_only_hold_validated_characters() -> None:
    raws = [
        "ｊｏｈｎ．ｄｏｅ＠ｃｏｎｔｏｓｏ．ｃｏｍ",
        "adele@contoso.com",
        GUEST_UPN,
        "john doe",
        "x'); drop@contoso.com",
    ]
    for row in validate([AgentRow(i, r) for i, r in enumerate(raws)], DOMAINS, INDEX):
        assert row.normalized_upn == "" or is_valid_upn(row.normalized_upn)


# ---- the fixtures' answer key ----------------------------------------------------------------------------------

TENANTS = Path(__file__).resolve().parents[3] / "sync" / "emulator" / "fixtures"


def load_tenant(name: str) -> tuple[list[AgentRow], Domains, DirectoryIndex]:
    """The fixture tenant as the pipeline sees it: roster rows, Graph domains, directory users."""
    doc = json.loads((TENANTS / f"{name}.json").read_text(encoding="utf-8"))
    users = [
        DirectoryUser(
            id=u["id"],
            upn=u["userPrincipalName"],
            display_name=u.get("displayName") or "",
            mail=u.get("mail"),
            proxy_addresses=tuple(u.get("proxyAddresses") or ()),
            im_addresses=tuple(u.get("imAddresses") or ()),
            account_enabled=bool(u.get("accountEnabled", True)),
            user_type=u.get("userType") or "Member",
        )
        for u in doc["users"]
    ]
    column = doc.get("upnColumn", "UPN")
    [agents] = [lst for lst in doc["site"]["lists"] if lst["title"] == "Agents"]
    rows = [AgentRow(int(it["id"]), it["fields"].get(column)) for it in agents["items"]]
    return rows, Domains.from_graph(doc["domains"]), DirectoryIndex.build(users)


@pytest.mark.parametrize("name", ["contoso", "fabrikam"])
def test_answer_key(name: str) -> None:
    rows, domains, directory = load_tenant(name)
    key = json.loads((TENANTS / f"{name}.answers.json").read_text(encoding="utf-8"))["items"]
    got = {r.item_id: r for r in validate(rows, domains, directory)}
    assert len(key) >= 30 and {a["item_id"] for a in key} == set(got)
    fields = ("normalized_upn", "status", "codes", "severity", "suggestion", "candidates", "detail")
    problems = []
    for answer in key:
        row = got[answer["item_id"]]
        assert row.raw_upn == answer["raw"]
        mine = (row.normalized_upn, row.status, list(row.codes), row.severity, row.suggestion, row.candidates,
                row.detail)
        want = tuple(answer[f] for f in fields)
        if mine != want:
            diff = {f: (m, w) for f, m, w in zip(fields, mine, want, strict=True) if m != w}
            problems.append(
                f"item {answer['item_id']} {answer['raw']!r} ({answer.get('kind')}): got/want {diff}"
            )
        assert row.collectable == bool(row.user_id)
    assert not problems, f"{len(problems)} of {len(key)} rows differ:\n" + "\n".join(problems)
