"""Each code system's rule: the shape of its codes, checked on every line and diagnosis saved. A shape, not a
lookup: no code list is shipped (CPT's descriptions are licensed; the public schedules change every year)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from billing_api.models import DiagnosisCodeSystem, ServiceCodeSystem


@dataclass(frozen=True)
class Rule:
    pattern: re.Pattern[str]
    text: str  # what a 422 says the rule is

    def matches(self, code: str) -> bool:
        return self.pattern.fullmatch(code) is not None


SERVICE_RULES: dict[ServiceCodeSystem, Rule] = {
    # Category I: five digits (99213, 90837); Category II and III: four digits and F or T (1036F, 0042T).
    ServiceCodeSystem.cpt: Rule(re.compile(r"[0-9]{4}[0-9FT]"),
                                "CPT: five digits, or four digits then F or T (99213, 1036F, 0042T)"),
    # HCPCS Level II: a letter and four digits (A0427, G0283, J3490).
    ServiceCodeSystem.hcpcs: Rule(re.compile(r"[A-Z][0-9]{4}"), "HCPCS Level II: a letter and four digits (A0427)"),
    # Ontario's Schedule of Benefits: a fee code of a letter and three digits, and the suffix of who did it
    # (A: the physician, B: an assistant, C: an anaesthetist) when the claim names one.
    ServiceCodeSystem.ohip: Rule(re.compile(r"[A-Z][0-9]{3}[A-Z]?"),
                                 "OHIP: a letter, three digits and an optional suffix letter (A007, A007A)"),
    # Alberta's Schedule of Medical Benefits: a health service code of two digits, a dot, two digits and up to
    # two letters (03.03A, 03.04A, 13.99BE, 03.01AD, 13.99K, 08.19A); seven characters at most.
    ServiceCodeSystem.ahcip: Rule(re.compile(r"[0-9]{2}\.[0-9]{2}[A-Z]{0,2}"),
                                  "AHCIP: two digits, a dot, two digits and up to two letters (03.03A, 13.99BE)"),
    # British Columbia's MSP payment schedule: a fee item of up to five digits (00100, 13237, 100).
    ServiceCodeSystem.msp: Rule(re.compile(r"[0-9]{1,5}"), "MSP: a fee item of one to five digits (00100)"),
    ServiceCodeSystem.legacy: Rule(re.compile(r"[0-9A-Z]{5}"), "five characters, digits or capital letters"),
}

DIAGNOSIS_RULES: dict[DiagnosisCodeSystem, Rule] = {
    # ICD-10-CM: a category of a letter, a digit and a digit or letter, then after a dot one to four more
    # characters (F41.1, Z00.00, S72.001A, F32.A). Sent without its dot (F411, as claim files carry it), it is
    # stored with it.
    DiagnosisCodeSystem.icd10cm: Rule(re.compile(r"[A-Z][0-9][0-9A-Z](\.?[0-9A-Z]{1,4})?"),
                                      "ICD-10-CM: a letter, a digit, a digit or letter, then optionally a dot and "
                                      "one to four digits or letters (F41.1, Z00.00, S72.001A)"),
    # OHIP's diagnostic codes: three digits (300 anxiety, 250 diabetes, 401 hypertension).
    DiagnosisCodeSystem.ohip_dx: Rule(re.compile(r"[0-9]{3}"), "OHIP diagnostic code: three digits (300)"),
}

MODIFIER_SYSTEMS = frozenset({ServiceCodeSystem.cpt, ServiceCodeSystem.hcpcs})


def canonical_diagnosis(system: DiagnosisCodeSystem, code: str) -> str:
    """The code as stored: ICD-10-CM with its dot after the category."""
    if system is DiagnosisCodeSystem.icd10cm and len(code) > 3 and code[3] != ".":
        return f"{code[:3]}.{code[3:]}"
    return code


def infer_from_cpt_code(cpt_code: str) -> ServiceCodeSystem:
    """The system of a code sent in the deprecated `cpt_code` field: CPT or HCPCS by its shape, else the
    unclassified five characters it always was."""
    for system in (ServiceCodeSystem.cpt, ServiceCodeSystem.hcpcs):
        if SERVICE_RULES[system].matches(cpt_code):
            return system
    return ServiceCodeSystem.legacy


# How documents name each system (a legacy code is shown alone: it names none).
SERVICE_LABELS: dict[str, str | None] = {
    "cpt": "CPT", "hcpcs": "HCPCS", "ohip": "OHIP", "ahcip": "AHCIP", "msp": "MSP", "legacy": None,
}
DIAGNOSIS_LABELS: dict[str, str] = {"icd10cm": "ICD-10-CM", "ohip_dx": "OHIP"}
