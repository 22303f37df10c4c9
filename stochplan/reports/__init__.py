"""Reports drawn from stored results: the text report and the Plotly dashboards.

Everything here reads what the results database holds, never live solver objects, so any
stored run can be redrawn.
"""
