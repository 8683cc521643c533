"""Microsoft Graph v1.0: the router and its handlers (users, presence, batching, sites and lists)."""
