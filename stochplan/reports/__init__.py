"""Reports drawn from stored or computed results: text now, dashboards later."""
