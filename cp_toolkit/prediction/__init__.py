"""Prediction a marketer can act on (issue 12): churn, next-period spend and next categories,
each against honest baselines out of time. Modules are imported by their own names."""
