"""Several replicas sharing the accounts through PostgreSQL: leases with fencing tokens, an even spread, handover.

    plan.py         share(), decide(): who should hold how many accounts (pure)
    leases.py       LeaseBook: the replicas and leases tables, judged by the database's clock
    coordinator.py  Coordinator: renews, takes and hands over accounts and tells the scheduler
"""
