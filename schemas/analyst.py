"""What the analysts' read-only role may read: the views of ``sql/`` made for them, nothing else.

The views run with their owner's rights, so SELECT on a view is all the role needs;
the raw tables (transactions, scores, labels, verdicts, drift_events, ...) stay closed.
"""

ANALYST_ROLE = "txguard_analyst"

# Each view once: Tableau's data source and extract take one relation per view, in this order.
ANALYST_VIEWS: tuple[str, ...] = (
    "scored_transactions",
    "alerts",
    "daily_anomaly_trend",
    "score_by_category",
    "anomalies_by_state",
    "amount_vs_score",
    "alert_funnel",
    "daily_activity",
    "category_activity",
    "alert_quality",
)
