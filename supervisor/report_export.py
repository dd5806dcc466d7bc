"""The report's tables as files: one table as CSV, or every table as an XLSX workbook (a sheet
each). Numbers stay numbers; text a spreadsheet would run as a formula gets a leading '."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence

from openpyxl import Workbook
from openpyxl.styles import Font

from supervisor.calllog import csv_cell
from supervisor.report_tables import Column, Kind, Table, exported

_UNITS = {Kind.RATIO: " (%)", Kind.MINUTES: " (min)"}


def header(column: Column) -> str:
    return column.header + _UNITS.get(column.kind, "")


def _cell(value: object, kind: Kind) -> object:
    out = exported(value, kind)
    return csv_cell(out) if isinstance(out, str) else out


def table_csv(table: Table) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([csv_cell(header(c)) for c in table.columns])
    for row in table.rows:
        writer.writerow(
            [
                "" if (cell := _cell(v, c.kind)) is None else cell
                for v, c in zip(row, table.columns, strict=True)
            ]
        )
    return buffer.getvalue().encode("utf-8")


def tables_xlsx(tables: Sequence[Table], about: Sequence[tuple[str, str]]) -> bytes:
    """A workbook: an `about` sheet (what the report covers), then a sheet per table."""
    book = Workbook()
    first = book.active
    first.title = "about"
    for key, value in about:
        first.append([csv_cell(key), csv_cell(value)])
    bold = Font(bold=True)
    for table in tables:
        sheet = book.create_sheet(table.key[:31])
        sheet.append([csv_cell(header(c)) for c in table.columns])
        for cell in sheet[1]:
            cell.font = bold
        for row in table.rows:
            sheet.append([_cell(v, c.kind) for v, c in zip(row, table.columns, strict=True)])
        sheet.freeze_panes = "B2"
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
