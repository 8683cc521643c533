"""UPN normalisation and validation of the Agent list (pure: no I/O, no third-party imports).

``text`` (trimming, NFKC, unwrapping), ``confusables`` (look-alike letters), ``hints`` and ``index`` (lookup
tables over the directory), ``suggest`` (who a bad cell probably meant), ``rules`` (the check order, the
verdict, the memoising Validator). The README's "UPN findings" section is the contract.
"""

from __future__ import annotations

from .index import DirectoryIndex, Domains
from .rules import Validator, Verdict, judge, resolved_so_far, summarize, validate
from .text import is_valid_upn, normalize

__all__ = [
    "DirectoryIndex",
    "Domains",
    "Validator",
    "Verdict",
    "is_valid_upn",
    "judge",
    "normalize",
    "resolved_so_far",
    "summarize",
    "validate",
]
