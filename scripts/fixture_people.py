"""The hand-written part of the fixture tenants: special people and the Agent-list defect rows.

Each defect row is (raw cell, kind, codes, normalized_upn, suggestion, Title[, candidates[, detail]]) and
holds the answer the UPN rules give for it, worked out by hand (the reasoning is in the comment next to
each row). "{u}" in a raw cell stands for the next ordinary employee's UPN, "{U}" for a mixed-case
spelling of it, "{u%40}" for it URL-encoded and "{n}" for that employee's display name.
Rows are listed in list order: a DUPLICATE row always comes after the row it repeats.
"""

from __future__ import annotations

from typing import Any

OFFICES = {"Redmond": -480, "New York": -300, "Toronto": -300, "London": 0, "Dublin": 0, "Berlin": 60,
           "Paris": 60, "Bangalore": 330, "Tokyo": 540, "Sydney": 600, "External": 0}

ROLES = {
    "Customer Service": ["Customer Service Agent", "Senior Agent", "Team Lead", "Quality Analyst"],
    "Technical Support": ["Support Engineer", "Escalation Engineer", "Support Team Lead"],
    "Sales": ["Account Executive", "Inside Sales Representative", "Sales Manager"],
    "Billing": ["Billing Specialist", "Collections Agent", "Billing Team Lead"],
    "IT": ["Systems Administrator", "Service Desk Analyst"],
    "Operations": ["Workforce Planner", "Operations Manager"],
}

TEAMS = ["Service Desk", "Billing", "Sales Support", "Tier 2", "Onboarding", "Retention"]

FIRST_NAMES = ["Aaron", "Bianca", "Carlos", "Dana", "Elena", "Farah", "Gavin", "Hannah", "Ivan", "Jasmine",
               "Kevin", "Laura", "Marcus", "Nadia", "Owen", "Paula", "Quentin", "Rosa", "Stefan", "Tanya",
               "Umar", "Vera", "Wesley", "Yara", "Zane", "Ingrid", "Rahul", "Mei", "Sofia", "Tobias"]
LAST_NAMES = ["Abbott", "Baker", "Chen", "Dalton", "Evans", "Fischer", "Gomez", "Hughes", "Ito", "Jensen",
              "Kowalski", "Lindqvist", "Mahler", "Novak", "Okafor", "Patel", "Quinn", "Reyes", "Santos",
              "Tran", "Ueda", "Varga", "Walsh", "Young"]

_EXT = "#EXT#@contoso.onmicrosoft.com"

# People the Agent-list defects refer to. Defaults: mail = UPN, SIP/imAddress = UPN, enabled, licensed.
CONTOSO_SPECIAL: list[dict[str, Any]] = [
    {"name": "Adele Vance", "upn": "a.vance@contoso.com", "mail": "adele.vance@contoso.com",
     "aliases": ["a.vance@contoso.com"], "sip": "adele.vance@contoso.com", "dept": "Sales"},
    {"name": "Megan Bowen", "upn": "megan.bowen@contoso.com", "sip": "megan@contoso.com", "dept": "Sales",
     "title": "Sales Manager"},
    {"name": "Lee Gu", "upn": "lee.gu@contoso.com", "office": "Tokyo", "dept": "Technical Support"},
    {"name": "Isaiah Langer", "upn": "isaiah.langer@contoso.com", "office": "New York"},
    {"name": "Nestor Wilke", "upn": "nestor.wilke@contoso.com", "aliases": ["n.wilke@contoso.com"],
     "dept": "Operations"},
    {"name": "José García", "upn": "jose.garcia@contoso.com", "given": "José", "surname": "García",
     "office": "Paris"},
    {"name": "Zoë Müller", "upn": "zoe.muller@contoso.com", "given": "Zoë", "surname": "Müller",
     "office": "Berlin"},
    {"name": "François Dubois", "upn": "francois.dubois@contoso.co.uk", "given": "François",
     "surname": "Dubois", "office": "London"},
    {"name": "Anna Schmidt", "upn": "anna.schmidt@contoso.com", "office": "Berlin", "dept": "Billing"},
    {"name": "Alex Wilber", "upn": "alex.wilber@contoso.com", "dept": "Technical Support"},
    {"name": "Alex Wilber", "upn": "alex.wilber@contoso.co.uk", "office": "London", "dept": "Sales"},
    {"name": "Oliver Smith", "upn": "oliver.smith@contoso.co.uk", "office": "London"},
    {"name": "Harry Jones", "upn": "harry.jones@contoso.co.uk", "aliases": ["harry.jones@contoso.com"],
     "office": "Dublin"},
    {"name": "Debra Berger", "upn": "debra.berger@contoso.com", "enabled": False},
    {"name": "Christie Cline", "upn": "christie.cline@contoso.com", "enabled": False, "office": "Sydney"},
    {"name": "Patti Fernandez", "upn": "patti.fernandez@contoso.com", "enabled": False, "dept": "Billing"},
    {"name": "Grady Archie", "upn": "g.archie@contoso.com", "mail": "grady.archie@contoso.com",
     "aliases": ["g.archie@contoso.com"], "enabled": False, "dept": "IT"},
    {"name": "Ann Lee", "upn": "ann.lee_northwind.com" + _EXT, "mail": "ann.lee@northwind.com",
     "guest": True, "nick": "ann.lee_northwind.com#EXT#", "office": "External", "title": "Contractor"},
    {"name": "Bob Kent", "upn": "bob.kent_fabrikam.com" + _EXT, "mail": "bob.kent@fabrikam.com",
     "guest": True, "nick": "bob.kent_fabrikam.com#EXT#", "office": "External", "title": "Partner Agent"},
    {"name": "Priya Nair", "upn": "priya.nair_gmail.com" + _EXT, "mail": "priya.nair@gmail.com",
     "guest": True, "nick": "priya.nair_gmail.com#EXT#", "office": "External", "title": "Contractor"},
    {"name": "Lynne Robbins", "upn": "lynne.robbins@contoso.com", "aliases": ["lynne.robbins@contoso-sales.com"],
     "dept": "Sales"},
    {"name": "Diego Siciliani", "upn": "diego.siciliani@contoso.com", "dept": "Sales", "office": "Toronto"},
    {"name": "Jordan Doe", "upn": "jdoe@contoso.com", "mail": "jordan.doe@contoso.com",
     "aliases": ["jdoe@contoso.com"], "sip": "jdoe@contoso.com"},
    {"name": "Johanna Lorenz", "upn": "johanna.lorenz@contoso.com", "office": "Berlin"},
    {"name": "Irvin Sayers", "upn": "irvin.sayers@contoso.com", "sip": "isayers@contoso.com"},
    {"name": "Wei Wang", "upn": "wei.wang@contoso.com", "sip": "w.wang@contoso.com", "office": "Sydney"},
    {"name": "Miriam Graham", "upn": "miriam.graham@contoso.com", "sip": "mgraham@contoso.com",
     "dept": "Operations"},
    {"name": "Emily Braun", "upn": "e.braun@contoso.com", "mail": "emily.braun@contoso.com",
     "aliases": ["e.braun@contoso.com"], "sip": "emily.braun@contoso.com", "dept": "Billing"},
    {"name": "Kenji Tanaka", "upn": "kenji.tanaka@contoso.com", "office": "Tokyo"},
    {"name": "Fiona Jones", "upn": "fiona.jones@contoso.com", "office": "New York"},
    {"name": "Björn Andersson", "upn": "bjorn.andersson@contoso.com", "given": "Björn",
     "surname": "Andersson", "office": "Berlin"},
    {"name": "Siobhán O'Neill", "upn": "siobhan.oneill@contoso.co.uk", "given": "Siobhán",
     "surname": "O'Neill", "office": "Dublin"},
    {"name": "Łukasz Nowak", "upn": "lukasz.nowak@contoso.com", "given": "Łukasz", "surname": "Nowak",
     "office": "Berlin", "dept": "IT"},
    # the people of the second round of findings (unwrapping, look-alikes, typos, separators, initials)
    {"name": "Ali Khan", "upn": "ali.khan@contoso.com", "office": "London", "dept": "Billing"},
    {"name": "John Smith", "upn": "john.smith@contoso.com", "office": "New York"},
    {"name": "Maria Garcia", "upn": "maria.garcia@contoso.com", "office": "Toronto", "dept": "Sales"},
    {"name": "Chris Jones", "upn": "chris.jones@contoso.com", "dept": "Technical Support"},
    {"name": "Claire Jones", "upn": "claire.jones@contoso.com", "office": "Dublin"},
    {"name": "Dana King", "upn": "dana.king@contoso.com", "dept": "Billing"},
    {"name": "Dana Kim", "upn": "dana.kim@contoso.com", "office": "Tokyo"},
    {"name": "Li Wei", "upn": "li.wei@contoso.com", "office": "Sydney"},
    {"name": "Li Wei", "upn": "liwei@contoso.com", "office": "Bangalore", "dept": "IT"},
    {"name": "Contoso Admin", "upn": "admin@contoso.onmicrosoft.com", "teams": False, "dept": "IT",
     "title": "Global Administrator"},
    {"name": "Reception Desk", "upn": "reception@contoso.com", "teams": False, "dept": "Operations",
     "title": "Shared Mailbox"},
    {"name": "Presence Sync Service", "upn": "svc-presence@contoso.com", "teams": False, "dept": "IT",
     "title": "Service Account"},
    {"name": "Presence Sync MFA Test", "upn": "svc-mfa@contoso.com", "teams": False, "dept": "IT",
     "title": "Service Account"},
]

_ANN = "ann.lee_northwind.com#ext#@contoso.onmicrosoft.com"
_BOB = "bob.kent_fabrikam.com#ext#@contoso.onmicrosoft.com"
_PRIYA = "priya.nair_gmail.com#ext#@contoso.onmicrosoft.com"

W, P, S, D = "WHITESPACE", "PREFIX", "SYNTAX", "DUPLICATE"
Q, A, RP, URL, DOT = "QUOTED", "ANGLE_ADDRESS", "REPEATED_PREFIX", "URL_ENCODED", "TRAILING_DOT"
M, C, NF = "MULTIPLE", "CONFUSABLE", "NOT_FOUND"
_CJ = "ambiguous: chris.jones@contoso.com, claire.jones@contoso.com"
_AW = "ambiguous: alex.wilber@contoso.co.uk, alex.wilber@contoso.com"

CONTOSO_ROWS: list[tuple[Any, ...]] = [
    # case only is not a finding
    ("Megan.Bowen@Contoso.com", "case", [], "megan.bowen@contoso.com", "", "Megan Bowen"),
    ("  lee.gu@contoso.com", "whitespace", [W], "lee.gu@contoso.com", "", "Lee Gu"),
    ("sip:isaiah.langer@contoso.com", "prefix", [P], "isaiah.langer@contoso.com", "", "Isaiah Langer"),
    # display name, unique match
    ("Adele Vance", "display_name", ["DISPLAY_NAME"], "", "a.vance@contoso.com", "Adele Vance"),
    (None, "empty", ["EMPTY"], "", "", "New starter (Service Desk)"),
    # Adele's mail (also her SMTP primary, SIP and imAddress): one user -> NOT_UPN
    ("adele.vance@contoso.com", "mail_not_upn", ["NOT_UPN"], "a.vance@contoso.com", "a.vance@contoso.com",
     "Adele Vance"),
    # unknown domain; no mail/smtp match; local part megan.bowen is unique
    ("megan.bowen@contoso.net", "unknown_domain", ["UNKNOWN_DOMAIN"], "", "megan.bowen@contoso.com",
     "Megan Bowen"),
    # unverified domain; Lynne has smtp:lynne.robbins@contoso-sales.com
    ("lynne.robbins@contoso-sales.com", "unverified_domain", ["UNVERIFIED_DOMAIN"], "",
     "lynne.robbins@contoso.com", "Lynne Robbins"),
    ("ann.lee_northwind.com#EXT#@contoso.onmicrosoft.com", "guest", ["GUEST"], _ANN, "", "Ann Lee"),
    # non-ASCII local part; diacritics removed = Jose's UPN
    ("jos\u00e9.garc\u00eda@contoso.com", "non_ascii", [S], "", "jose.garcia@contoso.com", "José García"),
    # full-width letters, NFKC -> kenji.tanaka@contoso.com
    ("\uff4b\uff45\uff4e\uff4a\uff49.\uff54\uff41\uff4e\uff41\uff4b\uff41@contoso.com", "unicode", ["UNICODE"],
     "kenji.tanaka@contoso.com", "", "Kenji Tanaka"),
    ("debra.berger@contoso.com", "disabled", ["DISABLED"], "debra.berger@contoso.com", "", "Debra Berger"),
    # bare user name, no @ and no space: unique UPN local part jdoe
    ("jdoe", "syntax", [S], "", "jdoe@contoso.com", "Jordan Doe"),
    # typo on a verified domain; no user has local part megan.bowne; "ne" swapped: megan.bowen
    ("megan.bowne@contoso.com", "not_found", ["NOT_FOUND"], "", "megan.bowen@contoso.com", "Megan Bowen"),
    # Irvin's SIP address / imAddress
    ("isayers@contoso.com", "sip_not_upn", ["NOT_UPN"], "irvin.sayers@contoso.com", "irvin.sayers@contoso.com",
     "Irvin Sayers"),
    # same as item of row 2 (lee.gu)
    ("lee.gu@contoso.com", "duplicate", [D], "lee.gu@contoso.com", "", "Lee Gu"),
    ("", "empty", ["EMPTY"], "", "", "Vacancy"),
    # "Last, First" -> "Adele Vance"
    ("Vance, Adele", "display_name", ["DISPLAY_NAME"], "", "a.vance@contoso.com", "Adele Vance"),
    ("mailto:nestor.wilke@contoso.com", "prefix", [P], "nestor.wilke@contoso.com", "", "Nestor Wilke"),
    ("LYNNE.ROBBINS@CONTOSO.COM", "case", [], "lynne.robbins@contoso.com", "", "Lynne Robbins"),
    # local part oliver.smith exists on contoso.co.uk only
    ("oliver.smith@contoso.com", "not_found", ["NOT_FOUND"], "", "oliver.smith@contoso.co.uk", "Oliver Smith"),
    # gmail: no mail/smtp match; local part lee.gu unique
    ("lee.gu@gmail.com", "unknown_domain", ["UNKNOWN_DOMAIN"], "", "lee.gu@contoso.com", "Lee Gu"),
    # guest's home address = Bob's mail -> his #EXT# UPN
    ("bob.kent@fabrikam.com", "guest_home_address", ["UNKNOWN_DOMAIN"], "", _BOB, "Bob Kent"),
    ("christie.cline@contoso.com\t", "disabled", [W, "DISABLED"], "christie.cline@contoso.com", "",
     "Christie Cline"),
    ("zo\u00eb.m\u00fcller@contoso.com", "non_ascii", [S], "", "zoe.muller@contoso.com", "Zoë Müller"),
    ("emily.braun@contoso.com", "mail_not_upn", ["NOT_UPN"], "e.braun@contoso.com", "e.braun@contoso.com",
     "Emily Braun"),
    # the doubled "@" repaired is Lee's UPN
    ("lee.gu@@contoso.com", "syntax", [S], "", "lee.gu@contoso.com", "Lee Gu"),
    ("   ", "empty", ["EMPTY"], "", "", "New starter (Billing)"),
    ("SIP:Johanna.Lorenz@contoso.com", "prefix", [P], "johanna.lorenz@contoso.com", "", "Johanna Lorenz"),
    # unverified; no mail/smtp match; local part diego.siciliani unique
    ("diego.siciliani@contoso-sales.com", "unverified_domain", ["UNVERIFIED_DOMAIN"], "",
     "diego.siciliani@contoso.com", "Diego Siciliani"),
    # two users are called Alex Wilber: a tie, both listed
    ("Alex Wilber", "display_name", ["DISPLAY_NAME"], "", "", "Alex Wilber", _AW),
    # prefix removed, then Wei's SIP address
    ("sip:w.wang@contoso.com", "sip_not_upn", [P, "NOT_UPN"], "wei.wang@contoso.com", "wei.wang@contoso.com",
     "Wei Wang"),
    ("bob.kent_fabrikam.com#ext#@contoso.onmicrosoft.com", "guest", ["GUEST"], _BOB, "", "Bob Kent"),
    # U+FB01 ligature, NFKC -> "fi"
    ("\ufb01ona.jones@contoso.com", "unicode", ["UNICODE"], "fiona.jones@contoso.com", "", "Fiona Jones"),
    ("sip:patti.fernandez@contoso.com", "disabled", [P, "DISABLED"], "patti.fernandez@contoso.com", "",
     "Patti Fernandez"),
    # nobody is called Rachel Green
    ("Rachel Green", "display_name", ["DISPLAY_NAME"], "", "", "Rachel Green"),
    # missing domain; local part megan.bowen unique
    ("megan.bowen@", "syntax", [S], "", "megan.bowen@contoso.com", "Megan Bowen"),
    # Isaiah is on contoso.com
    ("isaiah.langer@contoso.onmicrosoft.com", "not_found", ["NOT_FOUND"], "", "isaiah.langer@contoso.com",
     "Isaiah Langer"),
    # Harry's smtp: alias on contoso.com
    ("harry.jones@contoso.com", "mail_not_upn", ["NOT_UPN"], "harry.jones@contoso.co.uk",
     "harry.jones@contoso.co.uk", "Harry Jones"),
    ("someone.else@gmail.com", "unknown_domain", ["UNKNOWN_DOMAIN"], "", "", "Temp agent"),
    # NBSP trimmed; Nestor already resolved (mailto: row)
    ("\u00a0Nestor.Wilke@contoso.com", "duplicate", [W, D], "nestor.wilke@contoso.com", "", "Nestor Wilke"),
    ("\t\u00a0", "empty", ["EMPTY"], "", "", "Vacancy"),
    # non-ASCII domain; diacritics removed = Anna's UPN
    ("anna.schmidt@contos\u00f6.com", "non_ascii", [S], "", "anna.schmidt@contoso.com", "Anna Schmidt"),
    ("nobody.at.all@contoso-sales.com", "unverified_domain", ["UNVERIFIED_DOMAIN"], "", "", "Sales temp"),
    ("priya.nair_gmail.com#EXT#@contoso.onmicrosoft.com ", "guest", [W, "GUEST"], _PRIYA, "", "Priya Nair"),
    # Grady's mail; Grady is disabled
    ("grady.archie@contoso.com", "disabled", ["NOT_UPN", "DISABLED"], "g.archie@contoso.com",
     "g.archie@contoso.com", "Grady Archie"),
    # full-width commercial at U+FF20
    ("bjorn.andersson\uff20contoso.com", "unicode", ["UNICODE"], "bjorn.andersson@contoso.com", "",
     "Björn Andersson"),
    # Adele again, through her mail
    ("adele.vance@contoso.com", "duplicate", ["NOT_UPN", D], "a.vance@contoso.com", "a.vance@contoso.com",
     "Adele Vance"),
    ("ann.lee@northwind.com", "guest_home_address", ["UNKNOWN_DOMAIN"], "", _ANN, "Ann Lee"),
    # the doubled dot repaired is Isaiah's UPN
    ("isaiah..langer@contoso.com", "syntax", [S], "", "isaiah.langer@contoso.com", "Isaiah Langer"),
    # one letter missing: diego.siciliani
    ("diego.sicilani@contoso.com", "not_found", ["NOT_FOUND"], "", "diego.siciliani@contoso.com",
     "Diego Siciliani"),
    ("mailto:Megan.Bowen@contoso.com", "duplicate", [P, D], "megan.bowen@contoso.com", "", "Megan Bowen"),
    ("Jos\u00e9 Garc\u00eda", "display_name", ["DISPLAY_NAME"], "", "jose.garcia@contoso.com", "José García"),
    # Irvin resolved earlier through his SIP address; case alone is no finding
    ("Irvin.Sayers@contoso.com", "duplicate", [D], "irvin.sayers@contoso.com", "", "Irvin Sayers"),
    # bare user name; local part megan.bowen unique
    ("megan.bowen", "syntax", [S], "", "megan.bowen@contoso.com", "Megan Bowen"),
    ("priya.nair@gmail.com", "guest_home_address", ["UNKNOWN_DOMAIN"], "", _PRIYA, "Priya Nair"),
    ("MGraham@contoso.com", "sip_not_upn", ["NOT_UPN"], "miriam.graham@contoso.com",
     "miriam.graham@contoso.com", "Miriam Graham"),
    # two users have local part alex.wilber: a tie
    ("alex.wilber@contoso.net", "unknown_domain", ["UNKNOWN_DOMAIN"], "", "", "Alex Wilber", _AW),
    ("fran\u00e7ois.dubois@contoso.co.uk", "non_ascii", [S], "", "francois.dubois@contoso.co.uk",
     "François Dubois"),
    ("\ufeff{u}", "whitespace", [W], "{u}", "", None),
    ("{u}\u200b", "whitespace", [W], "{u}", "", None),
    ("{u}\t ", "whitespace", [W], "{u}", "", None),
    ("{U}", "case", [], "{u}", "", None),
    ("SMTP:{u}", "prefix", [P], "{u}", "", None),
    ("{U}", "case", [], "{u}", "", None),
    # --- pasted from Outlook, CSV exports and web forms: unwrapped, collected with a warning
    ("Ali Khan <ali.khan@contoso.com>", "angle_address", [A], "ali.khan@contoso.com", "", "Ali Khan"),
    ('"{u}"', "quoted", [Q], "{u}", "", None),
    ("{u}.", "trailing_dot", [DOT], "{u}", "", None),
    ("{u%40}", "url_encoded", [URL], "{u}", "", None),
    ("mailto:mailto:{u}", "repeated_prefix", [P, RP], "{u}", "", None),
    ("{n} <{u}>", "angle_address", [A], "{u}", "", None),
    ("'{u}'", "quoted", [Q], "{u}", "", None),
    # Chris Jones's first appearance; quotes inside the angle form belong to the name
    ('"Jones, Chris" <chris.jones@contoso.com>', "angle_address", [A], "chris.jones@contoso.com", "",
     "Chris Jones"),
    ("john.smith@contoso.com.", "trailing_dot", [DOT], "john.smith@contoso.com", "", "John Smith"),
    ("sip:{u%40}", "url_encoded", [P, URL], "{u}", "", None),
    ("SMTP:sip:{u}", "repeated_prefix", [P, RP], "{u}", "", None),
    ("<mailto:{u}>", "angle_address", [A, P], "{u}", "", None),
    # spaces inside the quotes are trimmed too
    ('" Maria.Garcia@contoso.com "', "quoted", [W, Q], "maria.garcia@contoso.com", "", "Maria Garcia"),
    ("mailto:{u}.", "trailing_dot", [P, DOT], "{u}", "", None),
    ("li.wei%40contoso.com", "url_encoded", [URL], "li.wei@contoso.com", "", "Li Wei"),
    ("sip: sip:{u}", "repeated_prefix", [P, RP], "{u}", "", None),
    ("\u201c{u}\u201d", "quoted", [Q], "{u}", "", None),
    # --- two people in one cell: nobody is collected, each address is resolved in candidates
    ("ali.khan@contoso.com; chris.jones@contoso.com", "multiple", [M], "", "", "Ali Khan / Chris Jones",
     "ali.khan@contoso.com -> ali.khan@contoso.com; chris.jones@contoso.com -> chris.jones@contoso.com",
     "2 addresses in one cell"),
    ("John.Smith@contoso.com, maria.garcia@contoso.com", "multiple", [M], "", "", "John Smith / Maria Garcia",
     "john.smith@contoso.com -> john.smith@contoso.com; maria.garcia@contoso.com -> maria.garcia@contoso.com",
     "2 addresses in one cell"),
    # the second address is a tie of its own
    ("kenji.tanaka@contoso.com\nc.jones@contoso.com", "multiple", [M], "", "", "Kenji Tanaka / C. Jones",
     f"kenji.tanaka@contoso.com -> kenji.tanaka@contoso.com; c.jones@contoso.com -> NOT_FOUND, {_CJ}",
     "2 addresses in one cell"),
    ("Ali Khan <ali.khan@contoso.com>; Maria Garcia <maria.garcia@contoso.com>", "multiple", [M], "", "",
     "Ali Khan / Maria Garcia",
     "ali.khan@contoso.com -> ali.khan@contoso.com; maria.garcia@contoso.com -> maria.garcia@contoso.com",
     "2 addresses in one cell"),
    # --- look-alike letters: the ASCII skeleton is looked up
    ("m\u0430ria.garcia@contoso.com", "confusable", [C], "", "maria.garcia@contoso.com", "Maria Garcia", "",
     "U+0430 CYRILLIC SMALL LETTER A at position 2"),
    ("j\u03bfhn.smith@contoso.com", "confusable", [C], "", "john.smith@contoso.com", "John Smith", "",
     "U+03BF GREEK SMALL LETTER OMICRON at position 2"),
    # skeleton c.jones: two people, no suggestion
    ("\u0441.jones@contoso.com", "confusable", [C], "", "", "Chris Jones", _CJ,
     "U+0441 CYRILLIC SMALL LETTER ES at position 1"),
    # the look-alike is in the domain
    ("kenji.tanaka@c\u043entoso.com", "confusable", [C], "", "kenji.tanaka@contoso.com", "Kenji Tanaka", "",
     "U+043E CYRILLIC SMALL LETTER O at position 15"),
    # --- one typo in the local part, same domain
    ("jhon.smith@contoso.com", "typo", [NF], "", "john.smith@contoso.com", "John Smith"),
    ("ali.kahn@contoso.com", "typo", [NF], "", "ali.khan@contoso.com", "Ali Khan"),
    ("chris.jnoes@contoso.com", "typo", [NF], "", "chris.jones@contoso.com", "Chris Jones"),
    # dana.kim (n -> m) and dana.king (g missing) are both one edit away: a tie
    ("dana.kin@contoso.com", "typo", [NF], "", "", "Dana King",
     "ambiguous: dana.kim@contoso.com, dana.king@contoso.com"),
    # --- the same name with another separator, or none
    ("ali_khan@contoso.com", "separator", [NF], "", "ali.khan@contoso.com", "Ali Khan"),
    ("alikhan@contoso.com", "separator", [NF], "", "ali.khan@contoso.com", "Ali Khan"),
    ("john-smith@contoso.com", "separator", [NF], "", "john.smith@contoso.com", "John Smith"),
    # li.wei and liwei are two people called Li Wei
    ("li_wei@contoso.com", "separator", [NF], "", "", "Li Wei", "ambiguous: li.wei@contoso.com, liwei@contoso.com"),
    # --- first initial + surname
    ("c.jones@contoso.com", "initials", [NF], "", "", "Chris Jones", _CJ),
    ("jsmith@contoso.com", "initials", [NF], "", "john.smith@contoso.com", "John Smith"),
    ("k.tanaka@contoso.com", "initials", [NF], "", "kenji.tanaka@contoso.com", "Kenji Tanaka"),
    ("cjones@contoso.com", "initials", [NF], "", "", "Claire Jones", _CJ),
    ("a.khan@contoso.com", "initials", [NF], "", "ali.khan@contoso.com", "Ali Khan"),
]

_FEXT = "#EXT#@fabrikam.onmicrosoft.com"

FABRIKAM_SPECIAL: list[dict[str, Any]] = [
    {"name": "Bob Kent", "upn": "bob.kent@fabrikam.com", "office": "New York"},
    {"name": "Renée Lefèvre", "upn": "renee.lefevre@fabrikam.com", "given": "Renée", "surname": "Lefèvre",
     "office": "Paris"},
    {"name": "Sam Taylor", "upn": "s.taylor@fabrikam.com", "mail": "sam.taylor@fabrikam.com",
     "aliases": ["s.taylor@fabrikam.com"], "sip": "sam.taylor@fabrikam.com"},
    {"name": "Kim Akers", "upn": "kim.akers@fabrikam.com", "sip": "kim@fabrikam.com", "dept": "Billing"},
    {"name": "Megan Bowen", "upn": "megan.bowen_contoso.com" + _FEXT, "mail": "megan.bowen@contoso.com",
     "guest": True, "nick": "megan.bowen_contoso.com#EXT#", "office": "External", "title": "Partner Agent"},
    {"name": "Tom Wright", "upn": "tom.wright@fabrikam.com", "enabled": False},
    {"name": "Chris Lee", "upn": "chris.lee@fabrikam.com", "dept": "Technical Support"},
    {"name": "Chris Lee", "upn": "christopher.lee@fabrikam.com", "dept": "Sales"},
    {"name": "Luis Peña", "upn": "luis.pena@fabrikam.com", "given": "Luis", "surname": "Peña",
     "office": "Toronto"},
    {"name": "Ian Brooks", "upn": "ian.brooks@fabrikam.onmicrosoft.com", "office": "London"},
    {"name": "Jane Smith", "upn": "jsmith@fabrikam.com", "mail": "jane.smith@fabrikam.com",
     "aliases": ["jsmith@fabrikam.com"], "sip": "jsmith@fabrikam.com"},
    {"name": "Nina Ødegaard", "upn": "nina.odegaard@fabrikam.com", "given": "Nina", "surname": "Ødegaard",
     "office": "Berlin"},
    {"name": "Fabrikam Admin", "upn": "admin@fabrikam.onmicrosoft.com", "teams": False, "dept": "IT",
     "title": "Global Administrator"},
    {"name": "Presence Sync Service", "upn": "svc-presence@fabrikam.com", "teams": False, "dept": "IT",
     "title": "Service Account"},
]

_MEGAN_G = "megan.bowen_contoso.com#ext#@fabrikam.onmicrosoft.com"

FABRIKAM_ROWS: list[tuple[Any, ...]] = [
    ("Bob.Kent@Fabrikam.com", "case", [], "bob.kent@fabrikam.com", "", "Bob Kent"),
    (" {u}", "whitespace", [W], "{u}", "", None),
    ("sip:{u}", "prefix", [P], "{u}", "", None),
    ("Ren\u00e9e Lef\u00e8vre", "display_name", ["DISPLAY_NAME"], "", "renee.lefevre@fabrikam.com",
     "Renée Lefèvre"),
    (None, "empty", ["EMPTY"], "", "", "New starter"),
    ("sam.taylor@fabrikam.com", "mail_not_upn", ["NOT_UPN"], "s.taylor@fabrikam.com", "s.taylor@fabrikam.com",
     "Sam Taylor"),
    ("kim@fabrikam.com", "sip_not_upn", ["NOT_UPN"], "kim.akers@fabrikam.com", "kim.akers@fabrikam.com",
     "Kim Akers"),
    # contoso.com is not a fabrikam domain; local part bob.kent unique
    ("bob.kent@contoso.com", "unknown_domain", ["UNKNOWN_DOMAIN"], "", "bob.kent@fabrikam.com", "Bob Kent"),
    ("megan.bowen_contoso.com#EXT#@fabrikam.onmicrosoft.com", "guest", ["GUEST"], _MEGAN_G, "", "Megan Bowen"),
    ("megan.bowen@contoso.com", "guest_home_address", ["UNKNOWN_DOMAIN"], "", _MEGAN_G, "Megan Bowen"),
    ("\uff4c\uff55\uff49\uff53.pena@fabrikam.com", "unicode", ["UNICODE"], "luis.pena@fabrikam.com", "",
     "Luis Peña"),
    ("luis.pe\u00f1a@fabrikam.com", "non_ascii", [S], "", "luis.pena@fabrikam.com", "Luis Peña"),
    ("tom.wright@fabrikam.com", "disabled", ["DISABLED"], "tom.wright@fabrikam.com", "", "Tom Wright"),
    ("jsmith", "syntax", [S], "", "jsmith@fabrikam.com", "Jane Smith"),
    ("ian.brooks@fabrikam.com", "not_found", ["NOT_FOUND"], "", "ian.brooks@fabrikam.onmicrosoft.com",
     "Ian Brooks"),
    ("Bob.Kent@fabrikam.com ", "duplicate", [W, D], "bob.kent@fabrikam.com", "", "Bob Kent"),
    ("Chris Lee", "display_name", ["DISPLAY_NAME"], "", "", "Chris Lee",
     "ambiguous: chris.lee@fabrikam.com, christopher.lee@fabrikam.com"),
    ("", "empty", ["EMPTY"], "", "", "Vacancy"),
    # Kim resolved earlier through her SIP address
    ("kim.akers@fabrikam.com", "duplicate", [D], "kim.akers@fabrikam.com", "", "Kim Akers"),
    ("someone@gmail.com", "unknown_domain", ["UNKNOWN_DOMAIN"], "", "", "Temp agent"),
    # one letter too many: bob.kent
    ("bob.kentt@fabrikam.com", "not_found", ["NOT_FOUND"], "", "bob.kent@fabrikam.com", "Bob Kent"),
    ("mailto:{u}", "prefix", [P], "{u}", "", None),
    ("{u}\u00a0", "whitespace", [W], "{u}", "", None),
    ("Lef\u00e8vre, Ren\u00e9e", "display_name", ["DISPLAY_NAME"], "", "renee.lefevre@fabrikam.com",
     "Renée Lefèvre"),
    ("  ", "empty", ["EMPTY"], "", "", "Vacancy"),
    # space inside the local part (has @, so not a display name); as a dot it is Sam's mail
    ("sam taylor@fabrikam.com", "syntax", [S], "", "s.taylor@fabrikam.com", "Sam Taylor"),
    ("{U}", "case", [], "{u}", "", None),
    ('"{u}"', "quoted", [Q], "{u}", "", None),
    ("{n} <{u}>", "angle_address", [A], "{u}", "", None),
    ("bob.kent@fabrikam.com; kim.akers@fabrikam.com", "multiple", [M], "", "", "Bob Kent / Kim Akers",
     "bob.kent@fabrikam.com -> bob.kent@fabrikam.com; kim.akers@fabrikam.com -> kim.akers@fabrikam.com",
     "2 addresses in one cell"),
    ("mailto:SMTP:{u}", "repeated_prefix", [P, RP], "{u}", "", None),
    # U+0456 looks like i
    ("tom.wr\u0456ght@fabrikam.com", "confusable", [C], "", "tom.wright@fabrikam.com", "Tom Wright", "",
     "U+0456 CYRILLIC SMALL LETTER BYELORUSSIAN-UKRAINIAN I at position 7"),
    ("{u%40}", "url_encoded", [URL], "{u}", "", None),
    ("luis.pnea@fabrikam.com", "typo", [NF], "", "luis.pena@fabrikam.com", "Luis Peña"),
    ("{u}.", "trailing_dot", [DOT], "{u}", "", None),
    ("kim_akers@fabrikam.com", "separator", [NF], "", "kim.akers@fabrikam.com", "Kim Akers"),
    # two people called Chris Lee: a tie
    ("c.lee@fabrikam.com", "initials", [NF], "", "", "Chris Lee",
     "ambiguous: chris.lee@fabrikam.com, christopher.lee@fabrikam.com"),
]
