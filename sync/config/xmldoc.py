"""Read config.xml safely, keeping line numbers, and find the presence source inside a UCC-style config.

Safety: parsing goes through defusedxml's ``DefusedXMLParser`` with ``forbid_dtd=True``: any ``<!DOCTYPE`` (and so
every entity declaration and external reference) stops the parse before anything is expanded or fetched, and becomes
a config problem. Line numbers: ElementTree drops them, so the parser feeds a small tree builder that reads expat's
``CurrentLineNumber`` / ``CurrentByteIndex`` at each start tag; an attribute's own line is found by scanning that
start tag in the source bytes (start tags may span lines).

This module only knows the XML shape; the meaning of values (GUIDs, URLs, secrets) lives in ``accounts`` and ``load``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from xml.etree.ElementTree import ParseError

from defusedxml import DTDForbidden, EntitiesForbidden, ExternalReferenceForbidden
from defusedxml.ElementTree import DefusedXMLParser

from ..errors import ConfigProblem

__all__ = ["KNOWN", "Problems", "SourceSection", "XmlNode", "find_source", "parse_xml"]

# Attributes and child elements we understand, per element of our subtree. Anything else is a warning.
KNOWN: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "MsGraphPresenceSource": (
        frozenset({"enabled", "Interval", "DomainsRefresh", "OutDir", "CaBundle", "LogFormat", "MetricsPort",
                   "MetricsHost", "CsvEncoding"}),
        frozenset({"Accounts", "WriteBack", "PresenceBudget", "Alerts", "Store"}),
    ),
    "Accounts": (frozenset(), frozenset({"Account"})),
    "Account": (
        frozenset({"Id", "ClientId", "TenantId", "EncryptedSecret", "Username", "EncryptedPassword",
                   "AuthorityHost", "GraphUrl", "Enabled", "ClientSecretExpires"}),
        frozenset({"AgentList", "Alerts", "Reports"}),
    ),
    "AgentList": (frozenset({"SiteUrl", "List", "UpnColumn"}), frozenset()),
    "WriteBack": (frozenset({"Interval", "ResourceUnitsPerMinute", "Availability", "Activity", "PresenceUpdated", "UpnStatus"}), frozenset()),
    "PresenceBudget": (frozenset({"Requests", "Window"}), frozenset()),
    "Alerts": (frozenset({"Webhook"}), frozenset()),
    "Store": (frozenset({"Url", "LeaseTtl", "LeaseRenew"}), frozenset()),
    "Reports": (frozenset({"Library", "Folder"}), frozenset()),
}


@dataclass(eq=False)
class XmlNode:
    """One element: tag without namespace, attributes, where its start tag begins, and its tree links."""

    tag: str
    attrib: dict[str, str]
    line: int
    offset: int
    parent: XmlNode | None = None
    children: list[XmlNode] = field(default_factory=list)

    def iter(self, tag: str) -> list[XmlNode]:
        """Every descendant (and self) named ``tag``, in document order."""
        found = [self] if self.tag == tag else []
        for child in self.children:
            found.extend(child.iter(tag))
        return found


class Problems:
    """Collects errors and warnings for one file, so every problem is reported at once."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.errors: list[ConfigProblem] = []
        self.warnings: list[ConfigProblem] = []

    def error(self, line: int | None, attribute: str, message: str, hint: str = "") -> None:
        self.errors.append(ConfigProblem(self.file, line, attribute, message, hint))

    def warn(self, line: int | None, attribute: str, message: str, hint: str = "") -> None:
        self.warnings.append(ConfigProblem(self.file, line, attribute, message, hint, severity="warning"))


class _LineTreeBuilder:
    """ElementTree parser target that builds ``XmlNode``s stamped with expat's current position."""

    def __init__(self) -> None:
        self.parser: DefusedXMLParser | None = None
        self.root: XmlNode | None = None
        self._stack: list[XmlNode] = []

    def start(self, tag: str, attrib: dict[str, str]) -> None:
        assert self.parser is not None
        expat = self.parser.parser
        node = XmlNode(_local(tag), {_local(k): v for k, v in attrib.items()},
                       expat.CurrentLineNumber, expat.CurrentByteIndex)
        if self._stack:
            node.parent = self._stack[-1]
            self._stack[-1].children.append(node)
        else:
            self.root = node
        self._stack.append(node)

    def end(self, tag: str) -> None:
        self._stack.pop()

    def data(self, text: str) -> None:
        pass

    def close(self) -> XmlNode | None:
        return self.root


def _local(name: str) -> str:
    return name.rsplit("}", 1)[-1]


class XmlDocument:
    """A parsed file: its root and its bytes (for attribute line lookup)."""

    def __init__(self, root: XmlNode, source: bytes) -> None:
        self.root = root
        self.source = source

    def attr_line(self, node: XmlNode, name: str) -> int:
        """The line of ``name="..."`` inside ``node``'s start tag (falls back to the tag's line)."""
        src = self.source
        end, quote, i = len(src), 0, node.offset
        while i < len(src):  # the start tag ends at the first '>' outside quotes
            c = src[i]
            if quote:
                quote = 0 if c == quote else quote
            elif c in (0x22, 0x27):
                quote = c
            elif c == 0x3E:
                end = i
                break
            i += 1
        m = re.compile(rb"[\s:]" + re.escape(name.encode()) + rb"\s*=").search(src, node.offset, end)
        return node.line + src.count(b"\n", node.offset, m.start() + 1) if m else node.line


def parse_xml(source: bytes, problems: Problems) -> XmlDocument | None:
    """Parse with DTDs, entities and external references forbidden; failures become problems."""
    builder = _LineTreeBuilder()
    parser = DefusedXMLParser(target=builder, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    builder.parser = parser
    try:
        parser.feed(source)
        root = parser.close()
    except (DTDForbidden, EntitiesForbidden, ExternalReferenceForbidden) as exc:
        line = parser.parser.CurrentLineNumber
        what = {DTDForbidden: "a DTD (<!DOCTYPE ...>)", EntitiesForbidden: "an entity declaration",
                ExternalReferenceForbidden: "an external reference"}[type(exc)]
        problems.error(line, "", f"the file contains {what}; DTDs and entities are not allowed and were not "
                       "expanded.", "Remove the <!DOCTYPE ...> block: config.xml needs none.")
        return None
    except ParseError as exc:
        line, col = getattr(exc, "position", (None, 0))
        reason = str(exc).split(":", 1)[0]
        problems.error(line, "", f"malformed XML at column {col + 1}: {reason}.",
                       "Fix the markup (an unclosed tag, a stray '&' or '<', or unbalanced quotes).")
        return None
    if root is None:
        problems.error(1, "", "the file holds no XML element.")
        return None
    return XmlDocument(root, source)


@dataclass
class SourceSection:
    """The ``MsGraphPresenceSource`` element found under a ``PresenceProvider``."""

    node: XmlNode
    enabled: bool
    accounts: list[XmlNode]


def check_known(doc: XmlDocument, node: XmlNode, problems: Problems) -> None:
    """Warn about attributes and child elements we do not understand (typos get a 'did you mean')."""
    attrs, children = KNOWN[node.tag]
    for name in node.attrib:
        if name not in attrs:
            guess = next((a for a in attrs if a.lower() == name.lower()), None)
            problems.warn(doc.attr_line(node, name), f"{node.tag}/@{name}", "unknown attribute, ignored.",
                          f"Did you mean {guess!r}? Attribute names are case-sensitive." if guess else "")
    for child in node.children:
        if child.tag not in children:
            guess = next((c for c in children if c.lower() == child.tag.lower()), None)
            problems.warn(child.line, child.tag, f"unknown element inside <{node.tag}>, ignored.",
                          f"Did you mean <{guess}>?" if guess else "")


def find_source(doc: XmlDocument, problems: Problems) -> SourceSection | None:
    """Locate ``PresenceProvider/MsGraphPresenceSource`` at any depth and list its Account elements."""
    sources = doc.root.iter("MsGraphPresenceSource")
    placed = [s for s in sources if s.parent is not None and s.parent.tag == "PresenceProvider"]
    for stray in (s for s in sources if s not in placed):
        problems.error(stray.line, "MsGraphPresenceSource", "is not a child of <PresenceProvider>, so it is "
                       "ignored.", "Move it inside the <PresenceProvider> element.")
    if not placed:
        if not sources:
            where = doc.root.iter("PresenceProvider")
            problems.error(where[0].line if where else None, "MsGraphPresenceSource",
                           "no <PresenceProvider><MsGraphPresenceSource> found, so no account is enabled.",
                           "Add the MsGraphPresenceSource element (see config/config.example.xml).")
        return None
    for extra in placed[1:]:
        problems.error(extra.line, "MsGraphPresenceSource", f"a second presence source (the first is on line "
                       f"{placed[0].line}).", "Keep one and put every Account in its <Accounts>.")
    node = placed[0]
    check_known(doc, node, problems)
    raw = node.attrib.get("enabled", "true").strip().lower()
    if raw not in ("true", "false"):
        problems.error(doc.attr_line(node, "enabled"), "MsGraphPresenceSource/@enabled",
                       f"{node.attrib['enabled']!r} is not true or false.")
    enabled = raw != "false"
    accounts: list[XmlNode] = []
    lists = [c for c in node.children if c.tag == "Accounts"]
    for extra in lists[1:]:
        problems.warn(extra.line, "Accounts", "a second <Accounts> element; its accounts are read too.",
                      "Keep one <Accounts> element.")
    for group in lists:
        check_known(doc, group, problems)
        accounts.extend(c for c in group.children if c.tag == "Account")
    for acc in accounts:
        check_known(doc, acc, problems)
        for child in acc.children:
            if child.tag in KNOWN:
                check_known(doc, child, problems)
    for child in node.children:
        if child.tag in ("WriteBack", "PresenceBudget", "Alerts"):
            check_known(doc, child, problems)
    return SourceSection(node, enabled, accounts)
