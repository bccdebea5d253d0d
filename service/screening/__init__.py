"""Population screening: every patient of a Bulk Data export (or a directory of Bundles) against every trial.

Rule: one engine (`service.eligibility.evaluate_bundle`) behind one function (`screen_patient`); the local
and Spark backends only move data to it and its records back out.
"""

from service.screening.core import PatientTrialResult, Requirement, screen_bundle, screen_patient
from service.screening.summary import Problem, Summary

__all__ = ["PatientTrialResult", "Problem", "Requirement", "Summary", "screen_bundle", "screen_patient"]
