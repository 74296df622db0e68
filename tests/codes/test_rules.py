"""Each code system's rule, a table of real codes it takes and of codes it refuses (codes/rules.py)."""

from __future__ import annotations

import pytest

from billing_api.codes.rules import DIAGNOSIS_RULES, SERVICE_RULES, canonical_diagnosis, infer_from_cpt_code
from billing_api.models import DiagnosisCodeSystem, ServiceCodeSystem

SERVICE_CODES = {
    ServiceCodeSystem.cpt: (
        # office visits, psychotherapy, a Category II (F) and a Category III (T) code
        ["99213", "90837", "90834", "00100", "1036F", "0042T"],
        ["9921", "992133", "A0427", "1036X", "99-13", "F1036", "1036f"],
    ),
    ServiceCodeSystem.hcpcs: (
        # ALS emergency transport, mileage, an injection, a screening
        ["A0427", "A0425", "J3490", "G0283", "E0114"],
        ["0427A", "A042", "A04271", "AA427", "a0427"],
    ),
    ServiceCodeSystem.ohip: (
        # general assessment with and without its suffix, a consultation, an anaesthetist's code
        ["A007", "A007A", "A005C", "K013A", "G365", "E078A"],
        ["A07", "A0071", "A007AB", "7007A", "AA07", "a007a"],
    ),
    ServiceCodeSystem.ahcip: (
        # office visit, complex visit, a two-letter suffix, detention time, a procedure without a suffix
        ["03.03A", "03.04A", "13.99BE", "03.01AD", "13.99K", "08.19A", "03.03CV", "71.13"],
        ["0303A", "3.03A", "03.3A", "03.03ABC", "03.03a", "AB.03A", "03-03A", "03.03A."],
    ),
    ServiceCodeSystem.msp: (
        # BC fee items: a visit, a counselling item, short forms
        ["00100", "13200", "100", "7", "12101"],
        ["001000", "A0010", "00.10", "1E3"],
    ),
    ServiceCodeSystem.legacy: (
        ["99213", "A0427", "ABCDE", "0000Z"],
        ["9921", "992133", "abcde", "A007", "03.03A"],
    ),
}

DIAGNOSIS_CODES = {
    DiagnosisCodeSystem.icd10cm: (
        # anxiety, a routine exam, a hip fracture's seventh character, a letter after the dot, a bare category
        ["F41.1", "Z00.00", "S72.001A", "F32.A", "F41", "F411", "U07.1", "M54.50"],
        ["F4.1", "41.1", "F41.", "F41.12345", "FF1.1", "f41.1", "F41..1", "F41-1"],
    ),
    DiagnosisCodeSystem.ohip_dx: (
        # anxiety neurosis, diabetes, hypertension, a well-baby visit
        ["300", "250", "401", "916"],
        ["30", "3000", "30A", "F41"],
    ),
}


@pytest.mark.parametrize("system, code, valid", [
    pytest.param(system, code, valid, id=f"{system.value}-{code}-{'valid' if valid else 'invalid'}")
    for system, (good, bad) in SERVICE_CODES.items() for valid, codes in ((True, good), (False, bad))
    for code in codes
])
def test_service_code_rules(system, code, valid):
    assert SERVICE_RULES[system].matches(code) is valid


@pytest.mark.parametrize("system, code, valid", [
    pytest.param(system, code, valid, id=f"{system.value}-{code}-{'valid' if valid else 'invalid'}")
    for system, (good, bad) in DIAGNOSIS_CODES.items() for valid, codes in ((True, good), (False, bad))
    for code in codes
])
def test_diagnosis_code_rules(system, code, valid):
    assert DIAGNOSIS_RULES[system].matches(code) is valid


def test_every_system_has_a_rule_and_a_table():
    assert set(SERVICE_RULES) == set(ServiceCodeSystem) == set(SERVICE_CODES)
    assert set(DIAGNOSIS_RULES) == set(DiagnosisCodeSystem) == set(DIAGNOSIS_CODES)


@pytest.mark.parametrize("code, stored", [("F411", "F41.1"), ("F41.1", "F41.1"), ("S72001A", "S72.001A"),
                                          ("F41", "F41")])
def test_icd10cm_codes_are_stored_with_their_dot(code, stored):
    assert canonical_diagnosis(DiagnosisCodeSystem.icd10cm, code) == stored


@pytest.mark.parametrize("cpt_code, system", [("99213", "cpt"), ("0042T", "cpt"), ("1036F", "cpt"),
                                              ("A0427", "hcpcs"), ("ABCDE", "legacy"), ("9921Z", "legacy")])
def test_the_deprecated_cpt_code_is_classified_by_its_shape(cpt_code, system):
    assert infer_from_cpt_code(cpt_code) == system
