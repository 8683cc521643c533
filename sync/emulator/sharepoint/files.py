"""Folders and files of the site's document library over SharePoint REST, as office365-rest-python-client
addresses them:

- ``web/GetFolderByServerRelativeUrl('Shared Documents')`` or ``...Path(DecodedUrl='...')``, or
  ``web/RootFolder``, then any number of ``/Folders('name')`` steps;
- ``/Folders/Add('name')`` (also ``add(url='name')``) creates a folder (``Folder.add``, ``ensure_folder_path``);
- ``/Files/add(url='name',overwrite=true)`` with the bytes as the body (``Folder.upload_file``, ``Files.add``);
- ``/Files`` and ``/Folders`` list a folder; ``/Files('name')`` or ``/Files/GetByUrl('name')`` is one file;
- ``web/GetFileByServerRelativeUrl('...')`` or ``...Path(DecodedUrl='...')`` is a file: its metadata,
  ``/$value`` its bytes (``File.open_binary``, ``File.download``), ``POST /$value`` with
  ``X-HTTP-Method: PUT`` replaces them (``File.save_binary``), ``X-HTTP-Method: DELETE`` removes it.

URLs may be server-relative (``/sites/<site>/Shared Documents/x``) or relative to the web.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from typing import Any

from ..model.library import Library, LibraryError, LibraryFile
from . import entities as sj
from .call import ARGUMENT, INVALID_QUERY, SpCall, SpResult, err, ok, selected

__all__ = ["dispatch_files", "is_files_path"]

_Q = r"'(?P<{0}>(?:[^']|'')*)'"
_START = re.compile(r"web/(?:(?P<kind>getfolderbyserverrelative|getfilebyserverrelative)(?:url\(" + _Q.format("u")
                    + r"\)|path\(decodedurl=" + _Q.format("p") + r"\))|getfilebyid\(" + _Q.format("fid")
                    + r"\)|getfolderbyid\(" + _Q.format("did") + r"\)|(?P<root>rootfolder))", re.IGNORECASE)
_STEP = re.compile(r"/(?:folders\(" + _Q.format("folder") + r"\)|folders/add\((?:url=)?" + _Q.format("addf")
                   + r"\)|files\(" + _Q.format("file") + r"\)|files/getbyurl\(" + _Q.format("file2")
                   + r"\)|files/add\((?P<addargs>[^)]*)\)|(?P<coll>folders|files)|(?P<value>\$value))",
                   re.IGNORECASE)
_ARG = re.compile(r"(?P<k>\w+)=(?:'(?P<s>(?:[^']|'')*)'|(?P<v>[^,]*))")
FILE_MISSING = "-2130575338, Microsoft.SharePoint.SPException"
NOT_FOUND = "-2147024894, System.IO.FileNotFoundException"
EXISTS = "-2130575257, Microsoft.SharePoint.SPException"


def is_files_path(path: str) -> bool:
    return _START.match(path.strip("/")) is not None


def _unq(s: str) -> str:
    return s.replace("''", "'")


class _Fail(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code = status, code


def _web_relative(call: SpCall, url: str) -> str:
    """``url`` (absolute, server-relative or web-relative) as a path relative to the web, no slashes around."""
    u = re.sub(r"^https?://[^/]+", "", url.strip())
    if u.startswith("/"):
        site = call.site.path.rstrip("/")
        if u.lower() != site.lower() and not u.lower().startswith(site.lower() + "/"):
            raise _Fail(404, NOT_FOUND, "File Not Found.")
        u = u[len(site):]
    return "/".join(p for p in u.split("/") if p)


def _in_library(lib: Library, web_rel: str) -> str | None:
    """The library-relative path of a web-relative one, or None when it lies outside the library."""
    low, root = web_rel.lower(), lib.root.lower()
    if low == root:
        return ""
    return web_rel[len(root) + 1:] if low.startswith(root + "/") else None


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _server_url(call: SpCall, lib: Library, rel: str) -> str:
    return f"{call.site.path}/{lib.root}" + (f"/{rel}" if rel else "")


def folder_props(call: SpCall, lib: Library, rel: str | None) -> dict[str, Any]:
    """SP.Folder properties of a library folder (``rel``) or of the web's root folder (None)."""
    if rel is None:
        name, url, count = "", call.site.path, 1
    else:
        subs, files = lib.children(rel)
        name, url, count = (rel.rsplit("/", 1)[-1] if rel else lib.root), _server_url(call, lib, rel), len(subs) + len(files)
    return {"Exists": True, "IsWOPIEnabled": False, "ItemCount": count, "Name": name, "ProgID": None,
            "ServerRelativeUrl": url, "ServerRelativePath": {"DecodedUrl": url}, "TimeCreated": _iso(lib.created), "TimeLastModified": _iso(lib.created),
            "UniqueId": _folder_id(lib, rel or ""), "WelcomePage": ""}


def _folder_id(lib: Library, rel: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, lib.id + "/" + rel.lower()))


def file_props(call: SpCall, lib: Library, f: LibraryFile) -> dict[str, Any]:
    return {"CheckInComment": "", "CheckOutType": 2, "ContentTag": f"{{{f.unique_id.upper()}}},{f.version},1",
            "CustomizedPageStatus": 0, "ETag": f.etag, "Exists": True, "IrmEnabled": False, "Length": str(f.size),
            "Level": 1, "LinkingUri": None, "LinkingUrl": "", "MajorVersion": f.version, "MinorVersion": 0,
            "Name": f.name, "ServerRelativeUrl": _server_url(call, lib, f.path),
            "ServerRelativePath": {"DecodedUrl": _server_url(call, lib, f.path)}, "TimeCreated": _iso(f.created),
            "TimeLastModified": _iso(f.modified), "Title": None, "UIVersion": 512 * f.version,
            "UIVersionLabel": f"{f.version}.0", "UniqueId": f.unique_id}


def _folder_entity(call: SpCall, lib: Library, rel: str | None) -> tuple[dict[str, Any], str, str, str | None]:
    props = folder_props(call, lib, rel)
    uri = f"{call.api}/Web/GetFolderByServerRelativePath(decodedurl='{props['ServerRelativeUrl']}')"
    return props, uri, "SP.Folder", None


def _file_entity(call: SpCall, lib: Library, f: LibraryFile) -> tuple[dict[str, Any], str, str, str | None]:
    props = file_props(call, lib, f)
    uri = f"{call.api}/Web/GetFileByServerRelativePath(decodedurl='{props['ServerRelativeUrl']}')"
    return props, uri, "SP.File", f.etag


def _one(call: SpCall, row: tuple[dict[str, Any], str, str, str | None], status: int = 200) -> SpResult:
    props, uri, type_name, etag = row
    wanted = selected(call)
    if wanted and "*" not in wanted:  # names SharePoint would add (ListItemAllFields, Id) are left out
        low = {w.lower() for w in wanted}
        props = {k: v for k, v in props.items() if k.lower() in low}
    meta = f"{call.api}/$metadata#" + ("SP.ApiData.Files12" if type_name == "SP.File" else "SP.ApiData.Folders")
    headers = {"ETag": etag} if etag else {}
    return ok(call, sj.entity(call.fmt, props, uri=uri, type_name=type_name, etag=etag, metadata_url=meta),
              status, headers)


def _missing_file(call: SpCall, lib: Library, rel: str) -> _Fail:
    return _Fail(404, FILE_MISSING, f"The file {_server_url(call, lib, rel)} does not exist.")


def dispatch_files(call: SpCall) -> SpResult:
    try:
        return _run(call)
    except _Fail as exc:
        return err(call, exc.status, exc.code, str(exc))
    except LibraryError as exc:
        return err(call, 400, ARGUMENT, str(exc))


def _run(call: SpCall) -> SpResult:
    lib = call.site.library
    path = call.path.strip("/")
    m = _START.match(path)
    assert m is not None
    if m["fid"] is not None:
        found = lib.by_id(m["fid"])
        if found is None:
            raise _Fail(404, FILE_MISSING, "File Not Found.")
        web_rel = f"{lib.root}/{found.path}"
    elif m["did"] is not None:
        want = m["did"].strip("{}").lower()
        match = next((d for d in lib.folders.values() if _folder_id(lib, d) == want), None)
        if match is None:
            raise _Fail(404, NOT_FOUND, "File Not Found.")
        web_rel = f"{lib.root}/{match}" if match else lib.root
    else:
        web_rel = "" if m["root"] else _web_relative(call, _unq(m["u"] if m["u"] is not None else m["p"]))
    is_file = m["fid"] is not None or (bool(m["kind"]) and m["kind"].lower() == "getfilebyserverrelative")
    rel = _in_library(lib, web_rel)
    if not is_file and web_rel and (rel is None or lib.folder(rel) is None):
        raise _Fail(404, NOT_FOUND, "File Not Found.")
    pos = m.end()
    while pos < len(path):
        s = _STEP.match(path, pos)
        if s is None:
            return err(call, 404, INVALID_QUERY, f"Cannot find resource for the request {path[pos:].strip('/')}.")
        pos = s.end()
        last = pos >= len(path)
        if is_file:
            if s["value"] and last:
                return _content(call, lib, _existing(call, lib, rel))
            return err(call, 404, INVALID_QUERY, f"Cannot find resource for the request {s.group(0).strip('/')}.")
        if s["folder"] is not None:
            web_rel, rel = _child_folder(lib, web_rel, rel, _unq(s["folder"]))
        elif s["addf"] is not None and last:
            return _add_folder(call, lib, rel, _unq(s["addf"]))
        elif s["file"] is not None or s["file2"] is not None:
            is_file, rel = True, _child(rel, _unq(s["file"] if s["file"] is not None else s["file2"]))
        elif s["addargs"] is not None and last:
            return _add_file(call, lib, rel, s["addargs"])
        elif s["coll"] and last:
            return _listing(call, lib, rel, s["coll"].lower())
        else:
            return err(call, 404, INVALID_QUERY, f"Cannot find resource for the request {s.group(0).strip('/')}.")
    if is_file:
        return _file(call, lib, _existing(call, lib, rel))
    if call.method != "GET":
        return err(call, 405, INVALID_QUERY, f"The HTTP method '{call.method}' is not supported for this resource.")
    return _one(call, _folder_entity(call, lib, rel if web_rel else None))


def _child(rel: str | None, name: str) -> str | None:
    if rel is None:
        return None
    return f"{rel}/{name}" if rel else name


def _child_folder(lib: Library, web_rel: str, rel: str | None, name: str) -> tuple[str, str | None]:
    web = f"{web_rel}/{name}" if web_rel else name
    sub = _in_library(lib, web)
    if sub is None or lib.folder(sub) is None:
        raise _Fail(404, NOT_FOUND, "File Not Found.")
    return web, sub


def _add_folder(call: SpCall, lib: Library, rel: str | None, name: str) -> SpResult:
    if call.method != "POST":
        return err(call, 405, INVALID_QUERY, f"The HTTP method '{call.method}' is not supported for this resource.")
    if rel is None:  # the web's root folder: only the library itself lives here
        if name.strip("/").lower() != lib.root.lower():
            raise _Fail(403, "-2147024891, System.UnauthorizedAccessException",
                        f"Folders of this site live in its document library '{lib.root}'.")
        return _one(call, _folder_entity(call, lib, ""))
    created = lib.ensure_folder(f"{rel}/{name}" if rel else name)
    return _one(call, _folder_entity(call, lib, created))


def _add_file(call: SpCall, lib: Library, rel: str | None, args: str) -> SpResult:
    if call.method != "POST":
        return err(call, 405, INVALID_QUERY, f"The HTTP method '{call.method}' is not supported for this resource.")
    values = {a["k"].lower(): (_unq(a["s"]) if a["s"] is not None else a["v"].strip()) for a in _ARG.finditer(args)}
    name = values.get("url")
    if not name:
        return err(call, 400, ARGUMENT, "The parameter url is required.")
    if rel is None:
        raise _Fail(403, "-2147024891, System.UnauthorizedAccessException",
                    f"Files of this site live in its document library '{lib.root}'.")
    name = _in_library(lib, _web_relative(call, name)) if name.startswith("/") else (f"{rel}/{name}" if rel else name)
    if name is None:
        raise _Fail(404, NOT_FOUND, "File Not Found.")
    overwrite = values.get("overwrite", "false").lower() == "true"
    try:
        f, _ = lib.put(name, call.body, datetime.now(UTC), overwrite=overwrite)
    except LibraryError as exc:
        code = EXISTS if "already exists" in str(exc) else ARGUMENT
        raise _Fail(400, code, str(exc)) from None
    return _one(call, _file_entity(call, lib, f))


def _listing(call: SpCall, lib: Library, rel: str | None, what: str) -> SpResult:
    if call.method != "GET":
        return err(call, 405, INVALID_QUERY, f"The HTTP method '{call.method}' is not supported for this resource.")
    if rel is None:
        rows = [_folder_entity(call, lib, "")] if what == "folders" else []
    else:
        subs, files = lib.children(rel)
        rows = [_folder_entity(call, lib, d) for d in subs] if what == "folders" else [
            _file_entity(call, lib, f) for f in files]
    meta = f"{call.api}/$metadata#" + ("SP.ApiData.Folders" if what == "folders" else "SP.ApiData.Files12")
    return ok(call, sj.collection(call.fmt, rows, None, meta))


def _existing(call: SpCall, lib: Library, rel: str | None) -> LibraryFile:
    """The file at ``rel`` (None: a path outside the library), or the 404 SharePoint sends."""
    f = lib.file(rel) if rel is not None else None
    if f is None:
        raise _missing_file(call, lib, rel or "")
    return f


def _file(call: SpCall, lib: Library, f: LibraryFile) -> SpResult:
    if call.method == "DELETE":
        del lib.files[f.path.lower()]
        return SpResult(200, None)
    if call.method != "GET":
        return err(call, 405, INVALID_QUERY, f"The HTTP method '{call.method}' is not supported for this resource.")
    return _one(call, _file_entity(call, lib, f))


def _content(call: SpCall, lib: Library, f: LibraryFile) -> SpResult:
    if call.method in ("POST", "MERGE"):
        f, _ = lib.put(f.path, call.body, datetime.now(UTC))
        return SpResult(204, None, {"ETag": f.etag})
    if call.method != "GET":
        return err(call, 405, INVALID_QUERY, f"The HTTP method '{call.method}' is not supported for this resource.")
    return SpResult(200, f.content, {"ETag": f.etag}, "application/octet-stream")
