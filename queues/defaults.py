"""The centre's default categories, for tests and benchmarks (real ones come from config).

The IVR digits (1 medical, 2 fire, 3 police, 4 disaster, 0/none general, 5 non-emergency menu)
are not priorities: the caller's own choice of digit is not a triage, so every emergency shares
the top priority and strict arrival order decides among them.

Emergencies go to a free secondary operator at once (`secondary_after_seconds` 0): a person free
while a caller waits is the worst wait a 112 centre can have. The other categories wait 30 s
for a primary operator first, so that an operator kept for emergencies is not tied up by an
information call (or a blocked number) just before an emergency comes in.
"""

from __future__ import annotations

from queues.config import Category


def default_categories() -> tuple[Category, ...]:
    def category(
        code: str,
        label_id: str,
        label_en: str,
        priority: int,
        target: float,
        wrap: float,
        secondary_after: float,
    ) -> Category:
        return Category(code, label_id, label_en, priority, code, target, wrap, secondary_after)

    return (
        category("medical", "Medis / ambulans", "Medical / ambulance", 1, 10, 30, 0),
        category("fire", "Kebakaran", "Fire", 1, 10, 30, 0),
        category("police", "Polisi / keamanan", "Police / security", 1, 10, 30, 0),
        category("disaster", "Bencana / SAR", "Disaster / search and rescue", 1, 10, 30, 0),
        category("general", "Darurat umum", "General emergency", 2, 10, 30, 0),
        category("information", "Informasi", "Information", 5, 60, 20, 30),
        category("complaint", "Pengaduan masyarakat", "Public complaint", 5, 60, 30, 30),
        category(
            "public_services", "Layanan publik lainnya", "Other public services", 5, 60, 20, 30
        ),
        category("screened", "Nomor diblokir", "Blocked number", 9, 120, 10, 30),
    )
