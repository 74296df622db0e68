"""The checks of lines and diagnoses on save: each code by its system's rule, only the company's systems, modifiers
for CPT and HCPCS only, and pointers to diagnoses that exist. Every refusal is a 422 naming the line (or diagnosis)
and the rule; the checks run before anything is written."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from billing_api.codes.rules import (
    DIAGNOSIS_RULES, MODIFIER_SYSTEMS, SERVICE_RULES, canonical_diagnosis, infer_from_cpt_code,
)
from billing_api.codes.schemas import Diagnosis
from billing_api.companies import repository as companies_repository
from billing_api.errors import Unprocessable
from billing_api.models import DiagnosisCodeSystem, ServiceCodeSystem
from billing_api.patients.schemas import ServiceLineCreate


@dataclass(frozen=True)
class CodeSystems:
    """The systems a company bills in; None: never chosen (every system, and the legacy five characters)."""

    service: frozenset[ServiceCodeSystem] | None = None
    diagnosis: frozenset[DiagnosisCodeSystem] | None = None

    def allows_service(self, system: ServiceCodeSystem) -> bool:
        if self.service is None:
            return True
        return system in self.service

    def allows_diagnosis(self, system: DiagnosisCodeSystem) -> bool:
        return self.diagnosis is None or system in self.diagnosis


async def company_systems(session: AsyncSession, company_id: uuid.UUID) -> CodeSystems:
    company = await companies_repository.get_company(session, company_id)
    return CodeSystems(
        service=None if company.service_code_systems is None
        else frozenset(ServiceCodeSystem(s) for s in company.service_code_systems),
        diagnosis=None if company.diagnosis_code_systems is None
        else frozenset(DiagnosisCodeSystem(s) for s in company.diagnosis_code_systems),
    )


def _refuse(detail: str, code: str, field: str, **extra: object) -> Unprocessable:
    return Unprocessable(detail, code=code, extra={"field": field, **extra})


def checked_diagnoses(diagnoses: Sequence[Diagnosis], systems: CodeSystems) -> list[dict]:
    """The diagnoses as stored (`{"code_system", "code"}` in order), or 422 naming the first one refused."""
    stored: list[dict] = []
    for index, diagnosis in enumerate(diagnoses):
        field = f"diagnoses[{index}]"
        system = diagnosis.code_system
        if not systems.allows_diagnosis(system):
            raise _refuse(f"Diagnosis {index + 1}: the company does not bill diagnoses in `{system.value}` (it "
                          f"uses {_names(systems.diagnosis)}).", "code_system_not_used", f"{field}.code_system",
                          code_system=system.value, allowed=sorted(s.value for s in systems.diagnosis))
        rule = DIAGNOSIS_RULES[system]
        if not rule.matches(diagnosis.code):
            raise _refuse(f"Diagnosis {index + 1}: {diagnosis.code!r} is not a code of its system. The rule: "
                          f"{rule.text}.", "diagnosis_code_invalid", f"{field}.code", code_system=system.value,
                          rule=rule.text)
        entry = {"code_system": system.value, "code": canonical_diagnosis(system, diagnosis.code)}
        if entry in stored:
            raise _refuse(f"Diagnosis {index + 1} repeats diagnosis {stored.index(entry) + 1}.",
                          "duplicate_diagnosis", field)
        stored.append(entry)
    return stored


def checked_lines(lines: Sequence[ServiceLineCreate], systems: CodeSystems, diagnosis_count: int, *,
                  codes_required: bool) -> list[dict]:
    """The lines' columns as stored (without id and position), or 422 naming the first line refused and the rule.
    `codes_required`: every line needs a code (all but imported encounters' lines)."""
    return [_checked_line(index, line, systems, diagnosis_count, codes_required)
            for index, line in enumerate(lines)]


def _checked_line(index: int, line: ServiceLineCreate, systems: CodeSystems, diagnosis_count: int,
                  codes_required: bool) -> dict:
    field = f"lines[{index}]"
    name = f"Line {index + 1}"
    system, code = line.code_system, line.code
    cpt_code = line.__dict__["cpt_code"]  # not `line.cpt_code`: its deprecation warning is for clients
    if cpt_code is not None:
        if system is not None or code is not None:
            raise _refuse(f"{name}: give `code_system` and `code`, or the deprecated `cpt_code`, not both.",
                          "cpt_code_and_code", f"{field}.cpt_code")
        system, code = infer_from_cpt_code(cpt_code), cpt_code
    if (system is None) != (code is None):
        missing = "code" if code is None else "code_system"
        raise _refuse(f"{name}: `code_system` and `code` go together; `{missing}` is missing.",
                      "service_code_incomplete", f"{field}.{missing}")
    if system is None:
        if codes_required:
            raise _refuse(f"{name}: every service line needs a code (only imported encounters' lines may lack "
                          "one).", "cpt_code_required", f"{field}.code")
    else:
        _check_code(name, field, system, code, systems)
    if line.modifiers and system not in MODIFIER_SYSTEMS:
        raise _refuse(f"{name}: modifiers are for CPT and HCPCS codes only.", "modifiers_not_allowed",
                      f"{field}.modifiers")
    pointers = line.diagnosis_pointers
    for pointer in pointers:
        if pointer > diagnosis_count:
            raise _refuse(f"{name}: diagnosis pointer {pointer} points to no diagnosis (there are "
                          f"{diagnosis_count}).", "diagnosis_pointer_invalid", f"{field}.diagnosis_pointers",
                          pointer=pointer, diagnoses=diagnosis_count)
    if len(set(pointers)) != len(pointers):
        raise _refuse(f"{name}: a diagnosis pointer is given twice.", "diagnosis_pointer_invalid",
                      f"{field}.diagnosis_pointers")
    return {"code_system": system, "code": code, "modifiers": list(line.modifiers),
            "diagnosis_pointers": list(pointers), "description": line.description, "units": line.units,
            "fee_cents": line.fee_cents}


def _check_code(name: str, field: str, system: ServiceCodeSystem, code: str, systems: CodeSystems) -> None:
    if system is ServiceCodeSystem.legacy and systems.service is not None:
        raise _refuse(f"{name}: {code!r} is of no known code system; the company bills in "
                      f"{_names(systems.service)}.", "code_system_not_used", f"{field}.code_system",
                      code_system=system.value, allowed=sorted(s.value for s in systems.service))
    if not systems.allows_service(system):
        raise _refuse(f"{name}: the company does not bill in `{system.value}` (it uses "
                      f"{_names(systems.service)}).", "code_system_not_used", f"{field}.code_system",
                      code_system=system.value, allowed=sorted(s.value for s in systems.service))
    rule = SERVICE_RULES[system]
    if not rule.matches(code):
        raise _refuse(f"{name}: {code!r} is not a `{system.value}` code. The rule: {rule.text}.",
                      "service_code_invalid", f"{field}.code", code_system=system.value, rule=rule.text)


def check_pointers(lines: Sequence, diagnosis_count: int) -> None:
    """Lines already stored (an edit of the diagnoses alone) still point to diagnoses that exist."""
    for index, line in enumerate(lines):
        for pointer in line.diagnosis_pointers:
            if pointer > diagnosis_count:
                raise _refuse(f"Line {index + 1}: diagnosis pointer {pointer} would point to no diagnosis (there "
                              f"would be {diagnosis_count}); send the lines with the diagnoses.",
                              "diagnosis_pointer_invalid", f"lines[{index}].diagnosis_pointers", pointer=pointer,
                              diagnoses=diagnosis_count)


def _names(systems: frozenset | None) -> str:
    return ", ".join(f"`{s.value}`" for s in sorted(systems or (), key=lambda s: s.value))
