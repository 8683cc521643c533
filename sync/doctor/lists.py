"""Rows 5-7 of ``doctor``: the Agent list's site and list, its UPN column, the write-back columns.

Columns are read from the list's column schema (``/columns``: ``name``, ``readOnly``) when the service offers
it. Without a schema, the UPN column is judged from the items' values, and the write-back columns by writing one
item's current values back unchanged (``If-Match`` its eTag, so a concurrent edit is never overwritten).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlsplit

from ..config import AccountConfig, WriteBackColumns
from ..graph.shapes import LADDERS
from .probe import Answer, Caller
from .rules import FAIL, OK, WARN, Row

__all__ = ["ListChecks"]

# Fields Graph adds to every item: not columns an operator created.
_SYSTEM = {"@odata.etag", "id", "ContentType", "Modified", "Created", "AuthorLookupId", "EditorLookupId",
           "_UIVersionString", "Attachments", "Edit", "ItemChildCount", "FolderChildCount", "LinkTitle",
           "LinkTitleNoMenu", "_ComplianceFlags", "_ComplianceTag", "_ComplianceTagWrittenTime",
           "_ComplianceTagUserId", "AppAuthorLookupId", "AppEditorLookupId"}
_ATTRS = {"availability": "Availability", "activity": "Activity", "presence_updated": "PresenceUpdated",
          "upn_status": "UpnStatus"}


class ListChecks:
    """The Agent list through Graph's list route (and, for delegated accounts, SharePoint REST as the job reads it)."""

    def __init__(self, acc: AccountConfig, graph: Caller, site_token: str | None, columns: WriteBackColumns) -> None:
        self.acc = acc
        self.graph = graph
        self.site_token = site_token
        self.columns = columns
        self.found = False
        self.failed = Answer("GET", "", 0, error="not run")  # the answer a row returning None is about
        self.agents: int | None = None
        self.site_id = self.list_id = ""
        self.schema: dict[str, dict[str, Any]] | None = None
        self.first_item: int | None = None
        self.rest: Answer | None = None  # SharePoint REST's answer for the list (delegated accounts)

    # --- 5 ----------------------------------------------------------------------------------------------------
    def site(self) -> Answer:
        parts = urlsplit(self.acc.site_url or "")
        answer = self.graph.call("GET", f"sites/{parts.hostname or ''}:{quote(parts.path.rstrip('/'))}")
        if answer.ok and isinstance(answer.body, dict):
            self.site_id = str(answer.body.get("id", ""))
        return answer

    def agent_list(self, site: Answer) -> Row | None:
        acc = self.acc
        if site.status in (400, 404):
            return Row("agent_list", FAIL, f"site not found: {site.describe()}",
                       "check AgentList/@SiteUrl: the site's address as the browser shows it, e.g. "
                       "https://contoso.sharepoint.com/sites/ucc")
        if site.status == 501:  # the tenant does not offer Graph's list route (graph/shapes.py, ladder "list")
            return self._list_route_refused(site)
        if not site.ok:
            self.failed = site
            return None
        title = acc.list_title
        lst = self.graph.call("GET", f"sites/{self.site_id}/lists/{quote(title)}?$select=id,displayName")
        if lst.status == 404:
            names = self.graph.call("GET", f"sites/{self.site_id}/lists?$select=displayName")
            there = [str(v.get("displayName", "")) for v in (names.body or {}).get("value", [])] if names.ok else []
            return Row("agent_list", FAIL, f"no list titled {title!r} on {acc.site_url}",
                       f"set AgentList/@List to the list's title (lists on the site: "
                       f"{', '.join(there) or 'none readable'})")
        if not lst.ok:
            self.failed = lst
            return None
        self.list_id = str((lst.body or {}).get("id", ""))
        detail = f"site {acc.site_url}, list {title!r} (id {self.list_id})"
        if self.site_token is not None:  # delegated accounts read and write through SharePoint REST
            rest = self._rest_list()
            if not rest.ok:
                return self._rest_failed(detail, rest)
            detail += "; SharePoint REST answers too"
        self.found = True
        return Row("agent_list", OK, detail)

    def _list_route_refused(self, site: Answer) -> Row:
        """Graph's list route refused (HTTP 501): an application account has no other way to the list; a delegated
        one reads it through SharePoint REST anyway, but the column rows below need the list route."""
        detail = f"Graph's list route refused: {site.describe()}"
        if self.site_token is None:
            return Row("agent_list", FAIL, detail, LADDERS["list"].fix.format(account=self.acc.id))
        rest = self._rest_list()
        if not rest.ok:
            return self._rest_failed(detail, rest)
        return Row("agent_list", WARN, f"{detail}; SharePoint REST (how the job reads it for delegated accounts) "
                                       f"answers for list {self.acc.list_title!r}",
                   "nothing to change for the job; doctor reads the UPN and write-back columns through Graph's "
                   "list route, so those rows are skipped")

    @staticmethod
    def _rest_failed(detail: str, rest: Answer) -> Row:
        return Row("agent_list", FAIL, f"{detail}; SharePoint REST (how the job reads it for delegated "
                                       f"accounts): {rest.describe()}",
                   "give the service account edit rights on the site (site permissions) and the app the "
                   "delegated permission Sites.ReadWrite.All with admin consent")

    def rest_caller(self) -> Caller | None:
        """SharePoint REST with the site token (delegated accounts only; None for application accounts)."""
        return Caller(self.graph.http, self.site_token) if self.site_token is not None else None

    def list_url(self) -> str:
        """The Agent list in SharePoint REST, by title (as the job addresses it)."""
        title = self.acc.list_title.replace("'", "''")
        return f"{(self.acc.site_url or '').rstrip('/')}/_api/web/lists/GetByTitle('{quote(title)}')"

    def _rest_list(self) -> Answer:
        rest = self.rest_caller()
        assert rest is not None
        self.rest = rest.call("GET", self.list_url() + "?$select=Id,ListItemEntityTypeFullName",
                              headers={"Accept": "application/json;odata=verbose"})
        return self.rest

    # --- 6 ----------------------------------------------------------------------------------------------------
    def _base(self) -> str:
        return f"sites/{self.site_id}/lists/{self.list_id}"

    def _load_schema(self) -> None:
        answer = self.graph.call("GET", f"{self._base()}/columns?$select=name,displayName,readOnly,calculated,"
                                        "lookup,hidden")
        if answer.ok and isinstance(answer.body, dict):
            self.schema = {str(c.get("name")): c for c in answer.body.get("value", []) if isinstance(c, dict)}

    def upn_column(self) -> Row | None:
        col = self.acc.upn_column
        self._load_schema()
        items = with_value = 0
        url: str | None = f"{self._base()}/items?$select=id&$expand=fields($select={quote(col)})&$top=999"
        while url:
            page = self.graph.call("GET", url)
            if not page.ok or not isinstance(page.body, dict):
                self.failed = page
                return None
            for item in page.body.get("value", []):
                items += 1
                if self.first_item is None:
                    self.first_item = int(item["id"])
                value = (item.get("fields") or {}).get(col)
                with_value += value is not None and str(value).strip() != ""
            url = page.body.get("@odata.nextLink")
        self.agents = items
        detail = f"{items} item(s), {with_value} with a value in {col!r}"
        if self.schema is not None:
            if col in self.schema:
                return Row("upn_column", OK, f"column {col!r} found (column schema); {detail}")
            by_title = [n for n, c in self.schema.items() if str(c.get("displayName", "")) == col]
            fix = (f"set AgentList/@UpnColumn to the column's internal name {by_title[0]!r} (its display name is "
                   f"{col!r})" if by_title else
                   f"set AgentList/@UpnColumn to the internal name of the column holding the UPNs (columns: "
                   f"{', '.join(self._user_columns()) or 'none'})")
            return Row("upn_column", FAIL, f"list {self.acc.list_title!r} has no column named {col!r}", fix)
        if items == 0:
            return Row("upn_column", WARN, f"the list is empty, so column {col!r} cannot be seen",
                       "add the agents to the list and run doctor again")
        if with_value:
            return Row("upn_column", OK, f"column {col!r} found; {detail}")
        seen = self._columns_with_values()
        return Row("upn_column", FAIL, f"no item of list {self.acc.list_title!r} has a value in a column named "
                                       f"{col!r} (columns with values on item {self.first_item}: "
                                       f"{', '.join(seen) or 'none'})",
                   "set AgentList/@UpnColumn to the internal name of the column that holds the UPNs")

    def _user_columns(self) -> list[str]:
        return [n for n, c in (self.schema or {}).items()
                if not c.get("readOnly") and not c.get("hidden") and n not in _SYSTEM][:20]

    def _item(self) -> Answer:
        return self.graph.call("GET", f"{self._base()}/items/{self.first_item}?$expand=fields")

    def _columns_with_values(self) -> list[str]:
        answer = self._item()
        fields = (answer.body or {}).get("fields", {}) if answer.ok and isinstance(answer.body, dict) else {}
        return [k for k in fields if k not in _SYSTEM and not k.startswith("@")]

    # --- 7 ----------------------------------------------------------------------------------------------------
    def writeback(self, prove_write: bool) -> Row | None:
        """The columns from the schema; when the schema is missing, or write access is not known from the token
        (``prove_write``), one item's current values are written back unchanged."""
        names = {attr: getattr(self.columns, attr) for attr in _ATTRS}
        cols = ", ".join(names.values())
        how = "column schema"
        if self.schema is not None:
            absent = [a for a, n in names.items() if n not in self.schema]
            locked = [a for a, n in names.items() if n in self.schema and (
                self.schema[n].get("readOnly") or self.schema[n].get("calculated") or self.schema[n].get("lookup"))]
            if absent or locked:
                return self._columns_failed(names, absent, locked, how)
            if not prove_write:
                return Row("writeback", OK, f"columns {cols} exist and are writable ({how}; write access from the "
                                            "token's permissions)")
        if self.first_item is None:
            return Row("writeback", WARN, f"the list has no item, so write access to {cols} was not tried",
                       "add the agents to the list and run doctor again")
        answer = self._write_back_unchanged(list(names.values()))
        probe = f"item {self.first_item}'s current values were written back unchanged"
        if answer.ok:
            return Row("writeback", OK, f"columns {cols} exist and are writable: {probe}"
                                        + (f" ({how})" if self.schema is not None else " (no column schema)"))
        if answer.status == 412:
            return Row("writeback", WARN, f"item {self.first_item} changed while it was probed",
                       "run doctor again")
        if answer.status != 400 or self.schema is not None:
            self.failed = answer
            return None
        absent = [a for a, n in names.items() if self._write_back_unchanged([n]).status == 400]
        if not absent:
            self.failed = answer
            return None
        return self._columns_failed(names, absent, [], f"a write probe got HTTP 400: {answer.message}")

    def _write_back_unchanged(self, columns: list[str]) -> Answer:
        """PATCH the first item's fields with the values they hold now, only if it is still the version read."""
        item = self._item()
        if not item.ok or not isinstance(item.body, dict):
            return item
        fields = item.body.get("fields") or {}
        etag = str(item.body.get("eTag") or fields.get("@odata.etag") or "*")
        return self.graph.call("PATCH", f"{self._base()}/items/{self.first_item}/fields",
                               body={c: fields.get(c) for c in columns}, headers={"If-Match": etag}, attempts=1)

    def _columns_failed(self, names: dict[str, str], absent: list[str], locked: list[str], how: str) -> Row:
        title = self.acc.list_title
        parts, fixes = [], []
        if absent:
            cols = ", ".join(repr(names[a]) for a in absent)
            attrs = ", ".join(f"WriteBack/@{_ATTRS[a]}" for a in absent)
            parts.append(f"missing column(s) {cols}")
            fixes.append(f"create {cols} in list {title!r} (List settings > Create column, type Single line of "
                         f"text), or point {attrs} at existing columns")
        if locked:
            cols = ", ".join(repr(names[a]) for a in locked)
            attrs = ", ".join(f"WriteBack/@{_ATTRS[a]}" for a in locked)
            parts.append(f"read-only column(s) {cols}")
            fixes.append(f"{cols} cannot be written (calculated, lookup or system columns): point {attrs} at "
                         "Single line of text columns")
        return Row("writeback", FAIL, f"{'; '.join(parts)} ({how})", "; ".join(fixes))
