from __future__ import annotations

from typing import Annotated

from pydantic import Field, StringConstraints

from billing_api.models import DiagnosisCodeSystem
from billing_api.schemas import InputModel, ReadModel, json_int

MAX_DIAGNOSES = 12
MAX_MODIFIERS = 4
MAX_POINTERS = 4

# The characters any system's codes are made of; each system's own rule is checked on save (422
# `service_code_invalid` / `diagnosis_code_invalid`, naming the rule).
ServiceCode = Annotated[str, StringConstraints(min_length=1, max_length=10, pattern=r"^[0-9A-Z.]+$")]
DiagnosisCode = Annotated[str, StringConstraints(min_length=1, max_length=8, pattern=r"^[0-9A-Z.]+$")]
Modifier = Annotated[str, StringConstraints(min_length=2, max_length=2, pattern=r"^[0-9A-Z]{2}$")]
DiagnosisPointer = json_int(ge=1, le=MAX_DIAGNOSES)

SERVICE_SYSTEMS_TEXT = (
    "`cpt` (five digits, or four digits then F or T), `hcpcs` (HCPCS Level II: a letter and four digits), `ohip` "
    "(Ontario: a letter, three digits, an optional suffix letter), `ahcip` (Alberta: two digits, a dot, two digits, "
    "up to two letters), `msp` (British Columbia: up to five digits), `legacy` (five characters [0-9A-Z], as lines "
    "were before code systems; only in companies that have not chosen their systems)"
)
DIAGNOSIS_SYSTEMS_TEXT = "`icd10cm` (ICD-10-CM, F41.1) or `ohip_dx` (Ontario's three-digit diagnostic codes, 300)"


class Diagnosis(InputModel):
    code_system: DiagnosisCodeSystem = Field(description=DIAGNOSIS_SYSTEMS_TEXT)
    code: DiagnosisCode


class DiagnosisRead(ReadModel):
    code_system: DiagnosisCodeSystem
    code: str


Diagnoses = Annotated[list[Diagnosis], Field(max_length=MAX_DIAGNOSES)]
Modifiers = Annotated[list[Modifier], Field(max_length=MAX_MODIFIERS)]
DiagnosisPointers = Annotated[list[DiagnosisPointer], Field(max_length=MAX_POINTERS)]

