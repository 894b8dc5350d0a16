"""Bulk MFA phone prepopulation: the successor of the MSEndpointMgr AzAutomationScript4MFAPrePopulate runbook.

select.py picks users and their source number, normalize.py turns it into Graph's phone format, plan.py decides
per user what to write, sync.py writes it through $batch at the quota with a checkpoint per user, and the
triggers (timer and HTTP functions in triggers.py, the CLI in cli.py) run it.
"""
