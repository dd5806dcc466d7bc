"""The centre's default categories, for tests and benchmarks (real ones come from config).

The IVR digits (1 medical, 2 fire, 3 police, 4 disaster, 0/none general, 5 non-emergency menu)
are not priorities: the caller's own choice of digit is not a triage, so every emergency shares
the top priority and strict arrival order decides among them.
"""

from __future__ import annotations

from queues.config import Category


def default_categories() -> tuple[Category, ...]:
    def category(
        code: str, label_id: str, label_en: str, priority: int, target: float, wrap: float
    ) -> Category:
        return Category(code, label_id, label_en, priority, code, target, wrap)

    return (
        category("medical", "Medis / ambulans", "Medical / ambulance", 1, 10, 30),
        category("fire", "Kebakaran", "Fire", 1, 10, 30),
        category("police", "Polisi / keamanan", "Police / security", 1, 10, 30),
        category("disaster", "Bencana / SAR", "Disaster / search and rescue", 1, 10, 30),
        category("general", "Darurat umum", "General emergency", 2, 10, 30),
        category("information", "Informasi", "Information", 5, 60, 20),
        category("complaint", "Pengaduan masyarakat", "Public complaint", 5, 60, 30),
        category("public_services", "Layanan publik lainnya", "Other public services", 5, 60, 20),
        category("screened", "Nomor diblokir", "Blocked number", 9, 120, 10),
    )
