"""The tenants' data and the state that moves on its own: directory, sites and lists, presence, clock, counters."""
