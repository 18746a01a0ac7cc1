"""QR codes, for a phone to open an address: the display's check-in form, a student's
own page from the desk."""

import segno
from django.utils.safestring import mark_safe


def qr_svg(url: str) -> str:
    """A QR code of `url`, as inline SVG (our own markup: no style attribute, no script)."""
    svg = segno.make(url, error="m").svg_inline(scale=1, border=2, omitsize=True)
    return mark_safe(svg.replace("<svg ", '<svg role="img" aria-label="QR code" ', 1))  # noqa: S308
