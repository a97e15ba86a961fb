"""Invoice PDFs (INV-3): an invoice printed from an HTML template with WeasyPrint.

`invoice_pdf(session, platform_id, invoice_id)` and `invoice_pdf_for(session, caller,
invoice_id)` are the entry points (pdf/invoice.py); amounts and dates are formatted by
pdf/formatting.py.
"""

from tabkeeper.pdf.invoice import InvoiceDocument, invoice_pdf, invoice_pdf_for

__all__ = ["InvoiceDocument", "invoice_pdf", "invoice_pdf_for"]
