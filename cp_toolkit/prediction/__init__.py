"""Prediction a marketer can act on (issue 12, in progress): churn, next-period spend and next
categories, each chosen on the training window only and scored against honest baselines out of time.

Modules are imported by their own names (``cp_toolkit.prediction.spend`` and so on); this package
re-exports nothing yet.
"""
