"""A document's view model as PDF bytes, with fpdf2 (docs/decisions/0014-pdf-documents.md). Deterministic: the
same view gives the same bytes, dated by the document, not by the time of rendering."""

from __future__ import annotations

import unicodedata
from datetime import UTC, date

from fpdf import FPDF, FontFace
from fpdf.enums import TableBordersLayout

from billing_api.documents.views import DocumentKind, DocumentView, LineView, StatementItemView

TITLES = {DocumentKind.bill: "Bill", DocumentKind.superbill: "Superbill", DocumentKind.statement: "Statement"}
FONT = "helvetica"
HEADINGS = FontFace(emphasis="BOLD", fill_color=(230, 230, 230))


def latin(text: str) -> str:
    """The PDF's standard fonts write Latin-1 only: other letters lose their accents (`Ł` -> `L`), and what has
    no Latin form becomes `?`, rather than failing the document."""
    out = []
    for char in text:
        if ord(char) < 256:
            out.append(char)
            continue
        base = "".join(c for c in unicodedata.normalize("NFKD", char) if ord(c) < 256 and not unicodedata.combining(c))
        out.append(base or {"Ł": "L", "ł": "l", "Đ": "D", "đ": "d", "Ø": "O", "ø": "o"}.get(char, "?"))
    return "".join(out)


def money(cents: int) -> str:
    sign = "-" if cents < 0 else ""
    return f"{sign}{abs(cents) // 100:,}.{abs(cents) % 100:02d}"


def day(value: date | None) -> str:
    return value.isoformat() if value else ""


class _Pdf(FPDF):
    def __init__(self, view: DocumentView) -> None:
        super().__init__(orientation="portrait", unit="mm", format="letter")
        self._footer_text = latin(f"{TITLES[view.kind]} {view.reference} - {view.practice.name}")

    def footer(self) -> None:
        self.set_y(-12)
        self.set_font(FONT, size=7)
        self.set_text_color(110)
        self.cell(0, 5, self._footer_text, align="L")
        self.set_x(self.l_margin)
        self.cell(0, 5, f"Page {self.page_no()} of {{nb}}", align="R")
        self.set_text_color(0)


def render(view: DocumentView) -> bytes:
    pdf = _Pdf(view)
    issued = view.issued_at if view.issued_at.tzinfo else view.issued_at.replace(tzinfo=UTC)
    pdf.set_creation_date(issued.astimezone(UTC).replace(microsecond=0))
    pdf.set_title(latin(f"{TITLES[view.kind]} {view.reference}"))
    pdf.set_author(latin(view.practice.billing_name or view.practice.name))
    pdf.set_creator("billing-api")
    pdf.set_producer("billing-api")  # the library's version would change the bytes on every upgrade
    pdf.set_auto_page_break(auto=True, margin=16)
    pdf.set_margins(15, 15, 15)
    pdf.add_page()
    _heading(pdf, view)
    _parties(pdf, view)
    _diagnoses(pdf, view)
    if view.lines:
        _lines(pdf, view)
    if view.omitted_sessions:
        sessions = "1 session" if view.omitted_sessions == 1 else f"{view.omitted_sessions} sessions"
        _text(pdf, f"Not shown: {sessions} of this period with providers whose bills the requester may not view.",
              size=8, style="I")
        pdf.ln(2)
    if view.items:
        _items(pdf, view.items)
    _totals(pdf, view)
    return bytes(pdf.output())


def _text(pdf: FPDF, text: str, *, size: float = 9, style: str = "", height: float = 4.6) -> None:
    pdf.set_font(FONT, style=style, size=size)
    pdf.multi_cell(0, height, latin(text), new_x="LMARGIN", new_y="NEXT")


def _heading(pdf: FPDF, view: DocumentView) -> None:
    pdf.set_font(FONT, style="B", size=18)
    pdf.cell(0, 9, TITLES[view.kind], new_x="LMARGIN", new_y="NEXT")
    facts = [f"Reference: {view.reference}", f"Date: {day(view.issued_at.date())}"]
    if view.status:
        facts.append(f"Status: {view.status}")
    _text(pdf, "    ".join(facts), size=8)
    pdf.ln(2)


def _block(pdf: FPDF, title: str, lines: list[str]) -> None:
    lines = [line for line in lines if line]
    if not lines:
        return
    _text(pdf, title, size=8, style="B")
    for line in lines:
        _text(pdf, line)
    pdf.ln(1.5)


def _labelled(label: str, value: str | None) -> str:
    return f"{label}: {value}" if value else ""


def _parties(pdf: FPDF, view: DocumentView) -> None:
    practice = view.practice
    _block(pdf, "PRACTICE", [
        practice.name,
        practice.billing_name if practice.billing_name and practice.billing_name != practice.name else "",
        *practice.address,
        _labelled("Phone", practice.phone),
        _labelled("Tax ID", practice.tax_id),
        _labelled("Business number", practice.business_number),
        _labelled("Place of service", practice.place_of_service),
    ])
    for number, provider in enumerate(view.providers):
        name = f"{provider.name}, {provider.credentials}" if provider.credentials else provider.name
        provincial = provider.provincial_billing_number
        if provincial and provider.province:
            provincial = f"{provincial} ({provider.province})"
        _block(pdf, "PROVIDER" if len(view.providers) == 1 else f"PROVIDER {number + 1}", [
            name,
            _labelled("NPI", provider.npi),
            _labelled("Provincial billing number", provincial),
            _labelled("Billing number", provider.billing_number),
        ])
    patient = view.patient
    _block(pdf, "PATIENT", [
        patient.name,
        _labelled("Date of birth", day(patient.date_of_birth)),
        _labelled("Account", patient.account),
        _labelled("Bill to", patient.bill_to),
    ])
    if view.payer is not None:
        payer = f"Payer: {view.payer.name}"
    elif view.coverage == "private":
        payer = "Payer: the patient (private)"
    else:
        payer = _labelled("Coverage", view.coverage)
    if view.service_date:
        dates = f"Date of service: {day(view.service_date)}"
    elif view.period_start:
        label = "Statement period" if view.kind == DocumentKind.statement else "Dates of service"
        dates = f"{label}: {day(view.period_start)} to {day(view.period_end)}"
    else:
        dates = ""
    _block(pdf, "BILLING", [payer, dates])


def _diagnoses(pdf: FPDF, view: DocumentView) -> None:
    if not view.diagnoses:
        return
    _text(pdf, "DIAGNOSES", size=8, style="B")
    with pdf.table(col_widths=(10, 40, 130), text_align=("CENTER", "LEFT", "LEFT"), headings_style=HEADINGS,
                   borders_layout=TableBordersLayout.HORIZONTAL_LINES, line_height=5) as table:
        pdf.set_font(FONT, size=8.5)
        table.row(["#", "Code system", "Code"])
        for pointer, diagnosis in enumerate(view.diagnoses, start=1):
            table.row([str(pointer), latin(diagnosis.code_system or ""), latin(diagnosis.code)])
    pdf.ln(3)


def _code(line: LineView) -> str:
    return f"{line.code_system} {line.code}" if line.code_system and line.code else line.code or ""


def _lines(pdf: FPDF, view: DocumentView) -> None:
    dated = any(line.service_date for line in view.lines)
    by_provider = len(view.providers) > 1
    headings = (["Date"] if dated else []) + ["Code", "Modifiers", "Dx", "Description"] + (
        ["Provider"] if by_provider else []) + ["Units", "Fee", "Amount"]
    widths = ([20] if dated else []) + [24, 18, 14, 0] + ([28] if by_provider else []) + [11, 18, 20]
    widths[widths.index(0)] = 186 - sum(widths)
    align = ["LEFT"] * (len(headings) - 3) + ["RIGHT"] * 3
    _text(pdf, "SERVICES", size=8, style="B")
    with pdf.table(col_widths=widths, text_align=align, headings_style=HEADINGS, line_height=5,
                   borders_layout=TableBordersLayout.HORIZONTAL_LINES) as table:
        pdf.set_font(FONT, size=8)
        table.row(headings)
        for line in view.lines:
            cells = ([day(line.service_date)] if dated else []) + [
                _code(line), " ".join(line.modifiers), ",".join(str(p) for p in line.diagnosis_pointers),
                line.description] + ([line.provider or ""] if by_provider else []) + [
                str(line.units), money(line.fee_cents), money(line.amount_cents)]
            table.row([latin(cell) for cell in cells])
    pdf.ln(3)


def _items(pdf: FPDF, items: tuple[StatementItemView, ...]) -> None:
    _text(pdf, "OPEN BILLS", size=8, style="B")
    with pdf.table(col_widths=(22, 64, 40, 20, 20, 20), headings_style=HEADINGS, line_height=5,
                   text_align=("LEFT", "LEFT", "LEFT", "RIGHT", "RIGHT", "RIGHT"),
                   borders_layout=TableBordersLayout.HORIZONTAL_LINES) as table:
        pdf.set_font(FONT, size=8)
        table.row(["Date", "Bill", "Provider", "Total", "Paid", "Balance"])
        for item in items:
            table.row([day(item.service_date), item.reference, latin(item.provider or ""), money(item.total_cents),
                       money(item.paid_cents), money(item.balance_cents)])
    pdf.ln(3)


def _totals(pdf: FPDF, view: DocumentView) -> None:
    rows = [("Total", view.total_cents), ("Paid", view.paid_cents), ("Balance", view.balance_cents)]
    if view.amount_due_cents is not None:
        rows.append(("Amount due", view.amount_due_cents))
    for number, (label, cents) in enumerate(rows):
        last = number == len(rows) - 1
        pdf.set_font(FONT, style="B" if last else "", size=10 if last else 9)
        pdf.set_x(pdf.l_margin + 116)
        pdf.cell(40, 5.5, label, align="R")
        pdf.cell(30, 5.5, money(cents), align="R", new_x="LMARGIN", new_y="NEXT")
