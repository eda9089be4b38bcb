"""Funding 資助: NIFS/RFS rules as versioned data, assessments, smart-line evidence, ledger, matcher.

- :mod:`microfab.funding.rules`        the scheme versions and their sourced rules (``data/``)
- :mod:`microfab.funding.application`  application files (YAML) → validated models, located errors
- :mod:`microfab.funding.assess`       eligibility, eligible cost, grant and payments, explained
- :mod:`microfab.funding.evidence`     smart-line evidence from the factory model and stored data
- :mod:`microfab.funding.ledger`       the project ledger: budget vs spend, deadlines, claims
- :mod:`microfab.funding.reports`      progress, final and benefit report drafts (HTML)
- :mod:`microfab.funding.matcher`      other schemes ranked against a company profile

Money arithmetic lives in :mod:`microfab.model.funding` (exact, floored to whole HK$).
"""
