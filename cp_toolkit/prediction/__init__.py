"""Stage 04 to come (issue 12): churn, next-period spend and next categories from one time split,
each chosen on the training window only and set beside honest baselines out of time.

Modules are imported by their own path (``cp_toolkit.prediction.windows`` ...); this package
re-exports nothing yet.
"""
