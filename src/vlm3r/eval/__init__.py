"""VSI-Bench and VSTI-Bench evaluation: the reference's metrics and aggregation, baselines, reports."""
