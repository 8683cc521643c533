"""The second round of UPN rules with plain values: unwrapping, look-alikes, suggestions, ties, MULTIPLE."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from sync.loops.writeback import upn_status_text
from sync.models import CODES, AgentRow, DirectoryUser, ValidationRow
from sync.validation import DirectoryIndex, Domains, Validator, normalize, validate
from sync.validation.confusables import confusable_chars, describe, skeleton
from sync.validation.hints import edits, separator_variants
from sync.validation.text import unwrap

DOMAINS = Domains.from_graph([{"id": "contoso.com", "isVerified": True}, {"id": "contoso.co.uk", "isVerified": True},
                              {"id": "contoso-sales.com", "isVerified": False}])
USERS = [
    DirectoryUser("id-ali", "ali.khan@contoso.com", "Ali Khan"),
    DirectoryUser("id-john", "john.smith@contoso.com", "John Smith"),
    DirectoryUser("id-maria", "Maria.Garcia@contoso.com", "María García"),
    DirectoryUser("id-chris", "chris.jones@contoso.com", "Chris Jones"),
    DirectoryUser("id-claire", "claire.jones@contoso.com", "Jones, Claire"),
    DirectoryUser("id-kenji", "kt0042@contoso.com", "Kenji Tanaka"),  # initials only from the display name
    DirectoryUser("id-sam", "s.taylor@contoso.com", "Sam Taylor", "sam.taylor@contoso.com",
                  ("SMTP:sam.taylor@contoso.com", "smtp:s.taylor@contoso.com")),
    DirectoryUser("id-li1", "li.wei@contoso.com", "Li Wei"),
    DirectoryUser("id-li2", "liwei@contoso.com", "Li Wei"),
    DirectoryUser("id-bo", "bo.li@contoso.com", "Bo Li"),
    DirectoryUser("id-guest", "ann_x.com#EXT#@contoso.com", "Ann (X)", "ann@x.com", user_type="Guest"),
]
INDEX = DirectoryIndex.build(USERS)


def row(raw: str | None, index: DirectoryIndex = INDEX) -> ValidationRow:
    [out] = validate([AgentRow(1, raw)], DOMAINS, index)
    return out


def brief(raw: str) -> tuple[str, tuple[str, ...], str, str]:
    r = row(raw)
    return r.normalized_upn, r.codes, r.suggestion, r.candidates


# ---- unwrapping -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "codes"),
    [
        ('"ali.khan@contoso.com"', ("QUOTED",)),
        ("'ali.khan@contoso.com'", ("QUOTED",)),
        ("\u201cali.khan@contoso.com\u201d", ("QUOTED",)),
        ("\u00abali.khan@contoso.com\u00bb", ("QUOTED",)),
        ('" ali.khan@contoso.com "', ("WHITESPACE", "QUOTED")),
        ("Ali Khan <ali.khan@contoso.com>", ("ANGLE_ADDRESS",)),
        ('"Khan, Ali" <ali.khan@contoso.com>', ("ANGLE_ADDRESS",)),
        ("<ali.khan@contoso.com>", ("ANGLE_ADDRESS",)),
        ("<mailto:ali.khan@contoso.com>", ("ANGLE_ADDRESS", "PREFIX")),
        ('"<ali.khan@contoso.com>"', ("QUOTED", "ANGLE_ADDRESS")),
        ("mailto:mailto:ali.khan@contoso.com", ("PREFIX", "REPEATED_PREFIX")),
        ("SMTP:sip:ali.khan@contoso.com", ("PREFIX", "REPEATED_PREFIX")),
        ("sip: SIP:ali.khan@contoso.com", ("PREFIX", "REPEATED_PREFIX")),
        ("ali.khan%40contoso.com", ("URL_ENCODED",)),
        ("ali.khan%40contoso%2Ecom", ("URL_ENCODED",)),
        ("mailto:ali.khan%40contoso.com", ("PREFIX", "URL_ENCODED")),
        ("ali.khan@contoso.com.", ("TRAILING_DOT",)),
        ("ali.khan@contoso.com..", ("TRAILING_DOT",)),
        (" ali.khan@contoso.com. ", ("WHITESPACE", "TRAILING_DOT")),
    ],
)
def test_safe_unwrapping_is_fixed_with_a_warning_each(raw: str, codes: tuple[str, ...]) -> None:
    r = row(raw)
    assert (r.status, r.severity, r.codes, r.normalized_upn, r.user_id) == (
        "fixed", "warning", codes, "ali.khan@contoso.com", "id-ali")
    assert set(codes) <= set(CODES) and all(CODES[c] == "warning" for c in codes)


def test_the_unwrapped_value_still_goes_through_every_later_check() -> None:
    assert brief('"nobody@gmail.com"')[1] == ("QUOTED", "UNKNOWN_DOMAIN")
    assert brief("Ali Khan <ali.khan@contoso-sales.com>")[1:3] == (("ANGLE_ADDRESS", "UNVERIFIED_DOMAIN"),
                                                                   "ali.khan@contoso.com")
    assert brief("jhon.smith%40contoso.com")[1:3] == (("URL_ENCODED", "NOT_FOUND"), "john.smith@contoso.com")
    assert brief('"Sam Taylor" <sam.taylor@contoso.com>')[:2] == ("s.taylor@contoso.com",
                                                                  ("ANGLE_ADDRESS", "NOT_UPN"))


def test_angle_brackets_around_something_that_is_no_address_are_left_alone() -> None:
    r = row("Ali Khan <ali khan>")
    assert (r.status, "ANGLE_ADDRESS" in r.codes) == ("invalid", False)
    assert r.suggestion == "ali.khan@contoso.com"  # from the name before the brackets


def test_a_lone_quote_or_a_dot_inside_the_address_is_not_unwrapped() -> None:
    assert row('"ali.khan@contoso.com').status == "invalid"
    assert row("ali.khan.@contoso.com").codes == ("SYNTAX",)


def test_plain_cells_skip_the_text_steps_and_agree_with_them() -> None:
    for raw in ("ali.khan@contoso.com", "Ali.Khan@Contoso.COM", "o'neil@contoso.com", "a@b"):
        assert unwrap(raw) == (raw, ())
        assert normalize(raw) == (raw.lower(), ())


# ---- look-alike characters ------------------------------------------------------------------------------------


def test_skeleton_and_description() -> None:
    cased = "J\u03bfhn.\u0405mith@contoso.com"  # Greek omicron, Cyrillic capital DZE
    assert skeleton(cased) == "john.smith@contoso.com"
    assert describe(confusable_chars(cased)) == (
        "U+03BF GREEK SMALL LETTER OMICRON at position 2, U+0405 CYRILLIC CAPITAL LETTER DZE at position 6")
    assert skeleton("\u039d\u03bd") == "nv"  # capital nu looks like N, small nu like v
    assert confusable_chars("plain@ascii.com") == []


def test_confusable_is_an_error_naming_the_letter_and_suggesting_the_skeleton() -> None:
    r = row("\u0430li.khan@c\u043entoso.com")
    assert (r.status, r.codes, r.suggestion) == ("invalid", ("CONFUSABLE",), "ali.khan@contoso.com")
    assert r.detail == ("U+0430 CYRILLIC SMALL LETTER A at position 1, "
                        "U+043E CYRILLIC SMALL LETTER O at position 11")
    assert "CONFUSABLE" in upn_status_text(r) and "U+0430" in upn_status_text(r)


def test_a_look_alike_whose_skeleton_is_a_tie_gets_no_suggestion() -> None:
    r = row("\u0441.jones@contoso.com")
    assert (r.codes, r.suggestion) == (("CONFUSABLE",), "")
    assert r.candidates == "ambiguous: chris.jones@contoso.com, claire.jones@contoso.com"


def test_a_display_name_with_a_look_alike_is_still_found() -> None:
    assert brief("J\u043ehn Smith")[1:3] == (("DISPLAY_NAME",), "john.smith@contoso.com")


def test_accents_stay_syntax_and_letters_of_other_scripts_without_a_look_alike_too() -> None:
    assert brief("mar\u00eda.garc\u00eda@contoso.com")[1:3] == (("SYNTAX",), "maria.garcia@contoso.com")
    assert brief("\u043c\u0430\u0440\u0438\u044f@contoso.com")[1] == ("SYNTAX",)  # мария: not all look-alikes


# ---- suggestions ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "suggestion"),
    [
        ("jhon.smith@contoso.com", "john.smith@contoso.com"),  # swapped letters
        ("john.smiht@contoso.com", "john.smith@contoso.com"),
        ("john.smth@contoso.com", "john.smith@contoso.com"),  # a letter missing
        ("johnn.smith@contoso.com", "john.smith@contoso.com"),  # one too many
        ("john.smyth@contoso.com", "john.smith@contoso.com"),  # one wrong
        ("sam.tailor@contoso.com", "s.taylor@contoso.com"),  # a typo of a mail address
        ("ali_khan@contoso.com", "ali.khan@contoso.com"),
        ("ali-khan@contoso.com", "ali.khan@contoso.com"),
        ("alikhan@contoso.com", "ali.khan@contoso.com"),
        ("a.likhan@contoso.com", "ali.khan@contoso.com"),
        ("c.jones@contoso.com", ""),
        ("k.tanaka@contoso.com", "kt0042@contoso.com"),  # display name "Kenji Tanaka"
        ("ktanaka@contoso.com", "kt0042@contoso.com"),
        ("jsmith@contoso.com", "john.smith@contoso.com"),
        ("ghost.writer@contoso.com", ""),
    ],
)
def test_not_found_suggestions(raw: str, suggestion: str) -> None:
    assert brief(raw)[1:3] == (("NOT_FOUND",), suggestion)


@pytest.mark.parametrize(
    ("raw", "candidates"),
    [
        ("c.jones@contoso.com", "ambiguous: chris.jones@contoso.com, claire.jones@contoso.com"),
        ("cjones@contoso.com", "ambiguous: chris.jones@contoso.com, claire.jones@contoso.com"),
        ("li_wei@contoso.com", "ambiguous: li.wei@contoso.com, liwei@contoso.com"),
        ("li-wei@contoso.com", "ambiguous: li.wei@contoso.com, liwei@contoso.com"),
    ],
)
def test_ties_give_no_suggestion_and_list_the_candidates(raw: str, candidates: str) -> None:
    assert brief(raw)[1:] == (("NOT_FOUND",), "", candidates)


def test_suggestions_stay_in_the_domain_and_short_names_get_no_typo_guess() -> None:
    assert brief("jhon.smith@contoso.co.uk")[2] == ""  # john.smith is on contoso.com only
    assert brief("bo.l@contoso.com")[2] == ""  # 5 characters or more for a typo guess
    assert brief("bo.lu@contoso.com")[2] == "bo.li@contoso.com"
    assert brief("bo.li@contoso.co.uk")[2] == "bo.li@contoso.com"  # the same local part elsewhere first


def test_a_stronger_rule_s_tie_is_not_broken_by_a_weaker_rule() -> None:
    users = [*USERS, DirectoryUser("id-ali2", "alikhan@contoso.co.uk", "Ali Khan")]
    index = DirectoryIndex.build(users)
    r = row("alikhan@contoso.com", index)  # the same local part on contoso.co.uk wins over the separator rule
    assert (r.suggestion, r.candidates) == ("alikhan@contoso.co.uk", "")


def test_syntax_repairs_are_suggested() -> None:
    assert brief("ali.khan@@contoso.com")[1:3] == (("SYNTAX",), "ali.khan@contoso.com")
    assert brief("sam taylor@contoso.com")[1:3] == (("SYNTAX",), "s.taylor@contoso.com")  # the mail
    assert brief("ali..khan@contoso.com")[1:3] == (("SYNTAX",), "ali.khan@contoso.com")
    assert brief("c..jones@contoso.com")[1:] == (("SYNTAX",), "", "ambiguous: chris.jones@contoso.com, "
                                                 "claire.jones@contoso.com")


@pytest.mark.parametrize("raw", ["ali.khan@contoso.com (Ali)", "Ali Khan - ali.khan@contoso.com",
                                 "Ali Khan <ali.khan@contoso.com>;", "ali.khan@contoso.com;"])
def test_one_address_among_other_text_is_suggested(raw: str) -> None:
    assert brief(raw)[1:3] == (("SYNTAX",), "ali.khan@contoso.com")


def test_the_suggestion_tables_follow_the_directory_version() -> None:
    index = DirectoryIndex.build(USERS)
    assert brief_in(index, "d.brown@contoso.com") == ""
    index.add([DirectoryUser("id-dan", "dan.brown@contoso.com", "Dan Brown")])
    assert brief_in(index, "d.brown@contoso.com") == "dan.brown@contoso.com"


def brief_in(index: DirectoryIndex, raw: str) -> str:
    return Validator(DOMAINS, index).validate([AgentRow(1, raw)])[0].suggestion


def test_generated_neighbours() -> None:
    assert {"john", "jon", "jxon", "jhoon", "jhonx"} <= set(edits("jhon")) and "jhon" not in set(edits("jhon"))
    assert {"ali.khan", "ali_khan", "alikhan", "a.likhan"} <= separator_variants("ali-khan")
    assert {"ali.khan", "a.likhan"} <= separator_variants("alikhan") and "alikhan" not in separator_variants(
        "alikhan")


# ---- several addresses in one cell -----------------------------------------------------------------------------


@pytest.mark.parametrize("sep", ["; ", ";", ", ", " ", "\n", "\r\n", " ;\n"])
def test_multiple_addresses(sep: str) -> None:
    r = row(f"ali.khan@contoso.com{sep}jhon.smith@contoso.com")
    assert (r.status, r.codes, r.normalized_upn, r.suggestion, r.user_id) == (
        "invalid", ("MULTIPLE",), "", "", None)
    assert r.candidates == ("ali.khan@contoso.com -> ali.khan@contoso.com; "
                            "jhon.smith@contoso.com -> NOT_FOUND, suggestion john.smith@contoso.com")


def test_multiple_names_each_address_even_in_the_outlook_form_and_ties() -> None:
    r = row("Ali Khan <ali.khan@contoso.com>; C Jones <c.jones@contoso.com>; x@gmail.com")
    assert r.candidates == ("ali.khan@contoso.com -> ali.khan@contoso.com; c.jones@contoso.com -> NOT_FOUND, "
                            "ambiguous: chris.jones@contoso.com, claire.jones@contoso.com; "
                            "x@gmail.com -> UNKNOWN_DOMAIN")
    assert r.detail == "3 addresses in one cell"


def test_what_a_finding_repeats_from_the_cell_is_printable_and_bounded() -> None:
    r = row("a!b@contoso.com; " + "x" * 500 + "@contoso.com; " + "; ".join(f"p{i}@gmail.com" for i in range(20)))
    assert r.codes == ("MULTIPLE",) and r.detail == "22 addresses in one cell"
    assert r.candidates.isprintable() and "a!b@contoso.com -> NOT_FOUND" in r.candidates
    assert r.candidates.endswith("; and 12 more") and len(r.candidates) < 1000
    # A control character is reported before anything else is read from the cell.
    assert row("a\x00b@contoso.com; c@contoso.com").codes == ("CONTROL_CHAR",)
    many = row("\u0430\u0430\u0430\u0430\u0430@contoso.com")
    assert many.codes == ("CONFUSABLE",) and many.detail.endswith("at position 3 and 2 more")


def test_one_address_with_a_doubled_at_is_not_multiple() -> None:
    assert row("ali.khan@@contoso.com").codes == ("SYNTAX",)
    assert row("Khan, Ali <ali.khan@contoso.com>").codes == ("ANGLE_ADDRESS",)


# ---- what the rest of the job sees ------------------------------------------------------------------------------


def test_upn_status_text_shows_the_new_codes_detail_and_ties() -> None:
    assert upn_status_text(row("ali.khan@contoso.com.")) == "fixed: TRAILING_DOT"
    assert upn_status_text(row("c.jones@contoso.com")) == (
        "invalid: NOT_FOUND (ambiguous: chris.jones@contoso.com, claire.jones@contoso.com)")
    long = row("; ".join(f"someone.{i}@contoso.com" for i in range(20)))
    assert long.codes == ("MULTIPLE",) and len(upn_status_text(long)) == 255


def test_each_new_code_has_a_severity_and_a_place() -> None:
    order = list(CODES)
    for code, severity in (("QUOTED", "warning"), ("ANGLE_ADDRESS", "warning"), ("REPEATED_PREFIX", "warning"),
                           ("URL_ENCODED", "warning"), ("TRAILING_DOT", "warning"), ("MULTIPLE", "error"),
                           ("CONFUSABLE", "error")):
        assert CODES[code] == severity
    assert order.index("UNICODE") < order.index("QUOTED") < order.index("PREFIX") < order.index("REPEATED_PREFIX")
    assert order.index("TRAILING_DOT") < order.index("MULTIPLE") < order.index("SYNTAX") < order.index("CONFUSABLE")


PACKAGE = Path(__file__).resolve().parents[3] / "sync" / "validation"


def test_the_validation_package_is_pure_and_small() -> None:
    for path in PACKAGE.glob("*.py"):
        text = path.read_text(encoding="utf-8")
        assert len(text.splitlines()) <= 400, path.name
        for node in ast.walk(ast.parse(text)):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else [])
            for name in names:
                top = name.split(".")[0]
                assert top in {"__future__", "collections", "dataclasses", "itertools", "operator", "re",
                               "unicodedata", "urllib", "sync"}, (path.name, name)
                assert not name.startswith("sync.") or name == "sync.models", (path.name, name)


def test_a_cell_over_1024_characters_is_too_long_whatever_it_holds() -> None:
    from sync.validation import Domains, judge
    from sync.validation.index import DirectoryIndex

    v = judge("a" * 1025 + "@contoso.com", Domains(frozenset({"contoso.com"})), DirectoryIndex())
    assert v.codes == ("TOO_LONG",) and "1,037 characters" in v.detail and v.user_id is None
    assert judge("a" * 1000 + "@contoso.com", Domains(frozenset({"contoso.com"})), DirectoryIndex()).codes != (
        "TOO_LONG",)


def test_control_characters_are_named_with_their_positions_and_the_clean_cell_suggested() -> None:
    from sync.models import DirectoryUser
    from sync.validation import Domains, judge
    from sync.validation.index import DirectoryIndex

    d = DirectoryIndex()
    d.add([DirectoryUser("id-1", "ali.khan@contoso.com", "Ali Khan")])
    domains = Domains(frozenset({"contoso.com"}))
    v = judge("ali.khan@contoso.com\x00", domains, d)
    assert v.codes == ("CONTROL_CHAR",) and v.detail == "U+0000 at position 21"
    assert v.suggestion == "ali.khan@contoso.com" and v.user_id is None  # not collected until the cell is fixed
    many = judge("\x1b[1m\x07ali\x7f.khan@contoso.com\x01", domains, d)
    assert many.codes == ("CONTROL_CHAR",) and many.detail.endswith("and 1 more")
    # Line breaks separate addresses (MULTIPLE), they are not control characters here.
    assert judge("ali.khan@contoso.com\nbob@contoso.com", domains, d).codes == ("MULTIPLE",)
