"""Stage 04 to come (issue 12): churn, next-period spend and next categories from one time split,
each chosen on the training window only and set beside honest baselines out of time.

Modules: :mod:`.windows` (time split, window features, targets), :mod:`.churn`, :mod:`.spend`,
:mod:`.categories` (candidates, time-ordered selection, baselines), :mod:`.evaluation` (gains,
lift, reliability, paired bootstrap) and :mod:`.operating` (profit curve, who to contact). They are
imported by their own path; this package re-exports nothing yet.
"""
