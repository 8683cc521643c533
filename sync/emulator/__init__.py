"""A local Microsoft 365 tenant: Entra ID login, Microsoft Graph and SharePoint REST over HTTPS.

It stands in for Microsoft, so it follows the documented wire contract and imports nothing
from the rest of ``sync``. Start it with ``presence-sync emulator`` or ``python -m sync.emulator``.
"""
