"""Lineage in git: the repository and code fingerprint (repo.py), promotion commits that hold
only baselines/NAME.yaml (promotion.py: build_promotion, promote), and the promotions read back
from git log (history.py). Used by the supervisor (agent/) and `foundry sweep --promote` alike."""
