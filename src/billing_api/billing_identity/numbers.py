"""The identity numbers a claim or superbill names, and the rules each is checked by on save.

Every check returns the value as stored (separators dropped or put back in one place) or raises 422 with a
`code` naming the field and the rule, and `field` in the body. No network lookups: a number of the right shape and
check digit may still belong to no one (NPPES, the CRA or the province is the authority on that).
"""

from __future__ import annotations

import re

from billing_api.errors import Unprocessable


def _refuse(field: str, code: str, detail: str, **extra: str) -> Unprocessable:
    return Unprocessable(detail, code=code, extra={"field": field, **extra})


def luhn_valid(digits: str) -> bool:
    """The Luhn (mod 10) check over a string of digits whose last digit is the check digit."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2 == 1:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


# NPI: ten digits, the tenth a Luhn check digit computed over the prefix 80840 (the card issuer prefix the
# standard assigns to US health applications) followed by the first nine digits (CMS, "Requirements for
# Check Digit" of the NPI standard). 1234567893 is the standard's own example.
NPI_PREFIX = "80840"


def npi(value: str) -> str:
    if not re.fullmatch(r"[0-9]{10}", value):
        raise _refuse("npi", "npi_format", "An NPI is ten digits, without spaces or dashes.")
    if not luhn_valid(NPI_PREFIX + value):
        raise _refuse("npi", "npi_check_digit",
                      "The NPI's last digit is not its check digit (Luhn over 80840 and the first nine digits): "
                      "a digit is mistyped.")
    return value


# Provincial billing numbers, per province: (pattern of what we accept, what we store, the rule in words).
# - ON: the OHIP billing (provider) number is six digits (Ministry of Health, OHIP billing number registration;
#   the claims file's provider number field is six numeric). The four-character group number is not it.
# - AB: the Alberta Health practitioner identifier (Prac ID) is nine digits, often written 1234-56789; the
#   hyphen is dropped. The business arrangement (BA) number is not it.
# - BC: the MSP practitioner number is five characters (the Teleplan claim field is five alphanumeric; a
#   physician's is five digits). The payee number, often the same, is not asked for here.
PROVINCES: dict[str, tuple[str, str]] = {
    "ON": (r"[0-9]{6}", "six digits (the OHIP billing number)"),
    "AB": (r"[0-9]{4}-?[0-9]{5}", "nine digits, optionally written 1234-56789 (the Alberta Health practitioner "
                                  "id)"),
    "BC": (r"[0-9A-Z]{5}", "five letters or digits (the MSP practitioner number)"),
}


def provincial_billing_number(province: str | None, value: str | None) -> tuple[str | None, str | None]:
    if value is None and province is None:
        return None, None
    if province is None:
        raise _refuse("province", "province_required",
                      "A provincial billing number needs its `province` (ON, AB or BC).")
    if value is None:
        raise _refuse("provincial_billing_number", "provincial_billing_number_required",
                      f"`province` {province} needs the `provincial_billing_number` it names.")
    pattern, rule = PROVINCES[province]
    upper = value.upper()
    if not re.fullmatch(pattern, upper):
        raise _refuse("provincial_billing_number", "provincial_billing_number_format",
                      f"A {province} billing number is {rule}.", province=province)
    return province, upper.replace("-", "")


# NUCC Health Care Provider Taxonomy code: ten characters, three digits, six letters or digits, and a final X
# (207Q00000X family medicine, 1041C0700X clinical social worker, 103T00000X psychologist).
def taxonomy_code(value: str) -> str:
    upper = value.upper()
    if not re.fullmatch(r"[0-9]{3}[0-9A-Z]{6}X", upper):
        raise _refuse("taxonomy_code", "taxonomy_code_format",
                      "A taxonomy code is ten characters: three digits, six letters or digits, then X "
                      "(207Q00000X).")
    return upper


# US EIN prefixes the IRS assigns ("How EINs are assigned and valid EIN prefixes", irs.gov): the first two
# digits name the campus or channel that issued the number. Other prefixes (00, 07-09, 17-19, 28, 29, 49, 69,
# 70, 78, 79, 89, 96, 97) are issued to no one.
EIN_PREFIXES = frozenset(
    "01 02 03 04 05 06 10 11 12 13 14 15 16 20 21 22 23 24 25 26 27 30 31 32 33 34 35 36 37 38 39 40 41 42 43 44 "
    "45 46 47 48 50 51 52 53 54 55 56 57 58 59 60 61 62 63 64 65 66 67 68 71 72 73 74 75 76 77 80 81 82 83 84 85 "
    "86 87 88 90 91 92 93 94 95 98 99".split()
)


def tax_id(value: str) -> str:
    """A US EIN: nine digits, written NN-NNNNNNN (also accepted without the hyphen; stored with it)."""
    if not re.fullmatch(r"[0-9]{2}-?[0-9]{7}", value):
        raise _refuse("tax_id", "tax_id_format", "A US EIN is nine digits, written 12-3456789.")
    digits = value.replace("-", "")
    if digits[:2] not in EIN_PREFIXES:
        raise _refuse("tax_id", "tax_id_prefix",
                      f"No EIN starts with {digits[:2]}: the IRS assigns no such prefix.")
    return f"{digits[:2]}-{digits[2:]}"


# CRA program identifiers of a program account (RC2, "The Business Number and your CRA program accounts"):
# corporation income tax, import-export, payroll deductions, GST/HST, registered charity, information returns.
BUSINESS_NUMBER_PROGRAMS = frozenset({"RC", "RM", "RP", "RR", "RT", "RZ"})


def business_number(value: str) -> str:
    """A Canadian business number: nine digits, the ninth a Luhn check digit, optionally followed by a program
    account (two letters and a four-digit reference number, 123456782 RT0001). Spaces and hyphens are dropped."""
    compact = re.sub(r"[\s-]", "", value).upper()
    match = re.fullmatch(r"([0-9]{9})(?:([A-Z]{2})([0-9]{4}))?", compact)
    if match is None:
        raise _refuse("business_number", "business_number_format",
                      "A business number is nine digits, optionally with a program account such as RT0001.")
    digits, program, reference = match.groups()
    if not luhn_valid(digits):
        raise _refuse("business_number", "business_number_check_digit",
                      "The business number's ninth digit is not its check digit: a digit is mistyped.")
    if program is not None and (program not in BUSINESS_NUMBER_PROGRAMS or reference == "0000"):
        raise _refuse("business_number", "business_number_program",
                      f"{program}{reference} is not a program account: one of "
                      f"{', '.join(sorted(BUSINESS_NUMBER_PROGRAMS))} and a reference number from 0001.")
    return compact


def phone(value: str) -> str:
    """Digits with the usual separators, 10 to 15 digits in all (a North American number, or an international
    one with its country code, E.164's limit). Stored as written."""
    digits = re.sub(r"[^0-9]", "", value)
    if not re.fullmatch(r"\+?[0-9 ().-]+", value) or not 10 <= len(digits) <= 15:
        raise _refuse("phone", "phone_format",
                      "A phone number is 10 to 15 digits, with spaces, dots, dashes, brackets and a leading +.")
    return value


# The CMS Place of Service code set (cms.gov, "Place of Service Code Set", the codes a professional claim
# names in CMS-1500 item 24B / 837P). Codes the set leaves unassigned are refused.
PLACES_OF_SERVICE: dict[str, str] = {
    "01": "Pharmacy",
    "02": "Telehealth Provided Other than in Patient's Home",
    "03": "School",
    "04": "Homeless Shelter",
    "05": "Indian Health Service Free-standing Facility",
    "06": "Indian Health Service Provider-based Facility",
    "07": "Tribal 638 Free-standing Facility",
    "08": "Tribal 638 Provider-based Facility",
    "09": "Prison/Correctional Facility",
    "10": "Telehealth Provided in Patient's Home",
    "11": "Office",
    "12": "Home",
    "13": "Assisted Living Facility",
    "14": "Group Home",
    "15": "Mobile Unit",
    "16": "Temporary Lodging",
    "17": "Walk-in Retail Health Clinic",
    "18": "Place of Employment-Worksite",
    "19": "Off Campus-Outpatient Hospital",
    "20": "Urgent Care Facility",
    "21": "Inpatient Hospital",
    "22": "On Campus-Outpatient Hospital",
    "23": "Emergency Room - Hospital",
    "24": "Ambulatory Surgical Center",
    "25": "Birthing Center",
    "26": "Military Treatment Facility",
    "27": "Outreach Site/Street",
    "31": "Skilled Nursing Facility",
    "32": "Nursing Facility",
    "33": "Custodial Care Facility",
    "34": "Hospice",
    "41": "Ambulance - Land",
    "42": "Ambulance - Air or Water",
    "49": "Independent Clinic",
    "50": "Federally Qualified Health Center",
    "51": "Inpatient Psychiatric Facility",
    "52": "Psychiatric Facility-Partial Hospitalization",
    "53": "Community Mental Health Center",
    "54": "Intermediate Care Facility/Individuals with Intellectual Disabilities",
    "55": "Residential Substance Abuse Treatment Facility",
    "56": "Psychiatric Residential Treatment Center",
    "57": "Non-residential Substance Abuse Treatment Facility",
    "58": "Non-residential Opioid Treatment Facility",
    "60": "Mass Immunization Center",
    "61": "Comprehensive Inpatient Rehabilitation Facility",
    "62": "Comprehensive Outpatient Rehabilitation Facility",
    "65": "End-Stage Renal Disease Treatment Facility",
    "66": "Programs of All-Inclusive Care for the Elderly (PACE) Center",
    "71": "Public Health Clinic",
    "72": "Rural Health Clinic",
    "81": "Independent Laboratory",
    "99": "Other Place of Service",
}


def place_of_service(value: str) -> str:
    if not re.fullmatch(r"[0-9]{2}", value):
        raise _refuse("place_of_service", "place_of_service_format",
                      "A place of service is the two-digit CMS code, such as 11 (office) or 10 (telehealth at "
                      "home).")
    if value not in PLACES_OF_SERVICE:
        raise _refuse("place_of_service", "place_of_service_unknown",
                      f"{value} is not a code of the CMS place-of-service code set.")
    return value
