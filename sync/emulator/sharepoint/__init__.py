"""SharePoint REST (``/_api``) as office365-rest-python-client speaks it: calls, items, queries, batches, quota."""
