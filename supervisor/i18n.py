"""The console's words in Bahasa Indonesia (the default) and English.

`MESSAGES[key] = (indonesian, english)`. Pages call `t(key)`; the browser gets the same
catalogue of its language for what it renders itself (live board, screen pop).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

LANGUAGES: Final = ("id", "en")
DEFAULT_LANGUAGE: Final = "id"

MESSAGES: Final[Mapping[str, tuple[str, str]]] = {
    # navigation and frame
    "nav.desk": ("Meja operator", "Operator desk"),
    "nav.board": ("Papan pantau", "Live board"),
    "nav.calls": ("Log panggilan", "Call log"),
    "nav.reports": ("Laporan", "Reports"),
    "nav.audit": ("Audit & pengguna", "Audit & users"),
    "nav.logout": ("Keluar", "Log out"),
    "nav.language": ("Bahasa", "Language"),
    "role.operator": ("operator", "operator"),
    "role.supervisor": ("supervisor", "supervisor"),
    "role.admin": ("admin", "admin"),
    # login
    "login.title": ("Masuk", "Sign in"),
    "login.username": ("Nama pengguna", "User name"),
    "login.password": ("Kata sandi", "Password"),
    "login.submit": ("Masuk", "Sign in"),
    "login.failed": ("Nama pengguna atau kata sandi salah.", "Wrong user name or password."),
    "login.throttled": ("Terlalu banyak percobaan gagal.", "Too many failed attempts."),
    # {seconds}: filled in by the login page
    "login.retry_in": ("Coba lagi dalam {seconds} detik.", "Try again in {seconds} seconds."),
    "login.retry_in_one": ("Coba lagi dalam 1 detik.", "Try again in 1 second."),
    # errors
    "error.forbidden": ("Anda tidak berhak membuka halaman ini.", "You may not open this page."),
    "error.not_found": ("Tidak ditemukan.", "Not found."),
    "error.title": ("Kesalahan", "Error"),
    # flash messages after an action
    "msg.saved": ("Tersimpan.", "Saved."),
    "msg.disposition_saved": ("Disposisi tersimpan.", "Disposition saved."),
    "msg.category_saved": ("Kategori tersimpan.", "Category saved."),
    "msg.bad_category": (
        "Kategori tidak dikenal: pilih salah satu kategori dari daftar. Tidak ada yang diubah.",
        "Unknown category: choose one from the list. Nothing was changed.",
    ),
    "msg.not_available": (
        "Fitur ini belum tersedia di aplikasi yang berjalan.",
        "The running app does not offer this yet.",
    ),
    "msg.not_your_call": ("Panggilan ini bukan milik Anda.", "This call is not yours."),
    "msg.invalid": ("Isian tidak valid.", "Invalid input."),
    "msg.no_operator": ("Operator tidak dikenal.", "Unknown operator."),
    "msg.blocked": ("Nomor diblokir.", "Number blocked."),
    "msg.unblocked": ("Blokir dicabut.", "Block lifted."),
    "msg.listening": ("Telepon Anda akan berdering.", "Your phone will ring."),
    "msg.no_phone": (
        "Akun Anda tidak punya telepon untuk mendengarkan.",
        "Your account has no phone to listen on.",
    ),
    "msg.agency_added": ("Menghubungi instansi…", "Calling the agency…"),
    "msg.callback_claimed": ("Panggilan balik diambil.", "Callback claimed."),
    "msg.callback_done": ("Panggilan balik selesai.", "Callback done."),
    # operator states
    "state.logged_out": ("keluar", "logged out"),
    "state.available": ("siap", "ready"),
    "state.offered": ("berdering", "ringing"),
    "state.on_call": ("dalam panggilan", "on a call"),
    "state.wrap_up": ("penyelesaian", "wrap-up"),
    "state.paused": ("jeda", "paused"),
    # call states (live)
    "call.arrived": ("masuk", "arrived"),
    "call.ivr": ("menu suara", "voice menu"),
    "call.queued": ("menunggu", "waiting"),
    "call.offered": ("berdering", "ringing"),
    "call.connected": ("tersambung", "connected"),
    "call.ended": ("selesai", "ended"),
    "call.abandoned": ("ditinggalkan", "abandoned"),
    # outcomes (records)
    "outcome.ongoing": ("berlangsung", "ongoing"),
    "outcome.answered": ("dijawab", "answered"),
    "outcome.abandoned": ("ditinggalkan", "abandoned"),
    "outcome.fallback": ("jalur cadangan", "fallback"),
    "outcome.unanswered": ("tak terjawab", "unanswered"),
    # verdicts
    "verdict.emergency": ("darurat", "emergency"),
    "verdict.non_emergency": ("bukan darurat", "non-emergency"),
    "verdict.information": ("informasi", "information"),
    "verdict.complaint": ("pengaduan", "complaint"),
    "verdict.prank": ("iseng / prank", "prank"),
    "verdict.silent": ("diam / hantu", "silent / ghost"),
    "verdict.misdial": ("salah sambung", "misdial"),
    # flags
    "flag.silent": ("diam", "silent"),
    "flag.cannot_speak": ("tidak bisa bicara", "cannot speak"),
    "flag.repeat": ("berulang", "repeat"),
    "flag.blocked": ("diblokir", "blocked"),
    "flag.fallback": ("cadangan", "fallback"),
    "flag.overflow": ("limpahan", "overflow"),
    "flag.recording_failed": ("rekaman gagal", "recording failed"),
    "flag.spoke": ("berbicara", "spoke"),
    "flag.screened": ("disaring", "screened"),
    "flag.supervisor_listen": ("didengar supervisor", "supervisor listened"),
    "flag.supervisor_whisper": ("dibisiki supervisor", "supervisor whispered"),
    "flag.supervisor_barge": ("dimasuki supervisor", "supervisor barged in"),
    # pause reasons
    "pause.break": ("istirahat", "break"),
    "pause.meal": ("makan", "meal"),
    "pause.prayer": ("sholat", "prayer"),
    "pause.training": ("pelatihan", "training"),
    "pause.meeting": ("rapat", "meeting"),
    "pause.admin": ("administrasi", "paperwork"),
    "pause.technical": ("gangguan teknis", "technical problem"),
    "pause.briefing": ("briefing", "briefing"),
    "pause.other": ("lainnya", "other"),
    "pause.pause": ("jeda", "paused"),
    "pause.supervisor": ("oleh supervisor", "by supervisor"),
    "pause.no_answer": ("tak menjawab", "no answer"),
    "pause.callback": ("menelepon balik", "calling back"),
    # operator desk
    "desk.title": ("Meja operator", "Operator desk"),
    "desk.state": ("Status", "State"),
    "desk.ready": ("Siap", "Ready"),
    "desk.login": ("Masuk antrean", "Log in to the queue"),
    "desk.pause": ("Jeda", "Pause"),
    "desk.pause_reason": ("Alasan jeda", "Pause reason"),
    "desk.logout": ("Keluar antrean", "Log out of the queue"),
    "desk.pending": ("setelah panggilan", "after the call"),
    "desk.unregistered": ("telepon belum terdaftar", "phone not registered"),
    "desk.unknown_operator": (
        "Operator ini tidak ada di konfigurasi pusat.",
        "This operator is not in the centre's configuration.",
    ),
    "pop.title": ("Panggilan", "Call"),
    "pop.none": ("Tidak ada panggilan.", "No call."),
    "pop.category": ("Kategori", "Category"),
    "pop.number": ("Nomor penelepon", "Caller number"),
    "pop.name": ("Nama penelepon", "Caller name"),
    "pop.flags": ("Tanda", "Flags"),
    "pop.repeat_count": ("Panggilan 24 jam terakhir", "Calls in the last 24 h"),
    "pop.blocked": ("Nomor diblokir", "Number blocked"),
    "pop.history": ("Panggilan terakhir dari nomor ini", "Last calls from this number"),
    "pop.no_history": ("Belum ada.", "None yet."),
    "pop.ended": ("Panggilan selesai: isi disposisi.", "Call over: fill in the disposition."),
    "pop.agencies": ("Sambungkan ke instansi", "Transfer to an agency"),
    "cat.unclassified": (
        "Penelepon belum memilih kategori: tanyakan keperluannya dan pilih kategorinya.",
        "The caller chose no category: ask what the emergency is and choose its category.",
    ),
    "cat.choose": ("Kategori panggilan", "Call category"),
    "cat.save": ("Simpan kategori", "Save category"),
    "disp.title": ("Disposisi", "Disposition"),
    "disp.verdict": ("Penilaian", "Verdict"),
    "disp.notes": ("Catatan", "Notes"),
    "disp.location": ("Lokasi kejadian", "Incident location"),
    "disp.save": ("Simpan disposisi", "Save disposition"),
    "cb.title": ("Panggilan balik", "Callbacks"),
    "cb.none": ("Tidak ada panggilan balik.", "No callbacks."),
    "cb.call_back": ("Telepon balik", "Call back"),
    "cb.done": ("Selesai", "Done"),
    "cb.reached": ("terhubung", "reached"),
    "cb.unreached": ("tak terhubung", "not reached"),
    "cb.called_again": ("sudah menelepon lagi", "called again since"),
    "cb.status.pending": ("menunggu", "pending"),
    "cb.status.claimed": ("diambil", "claimed"),
    # live board
    "board.title": ("Papan pantau", "Live board"),
    "board.today": ("Hari ini", "Today"),
    "board.received": ("Masuk", "Received"),
    "board.answered": ("Dijawab", "Answered"),
    "board.abandoned": ("Ditinggalkan", "Abandoned"),
    "board.prank": ("Iseng", "Prank"),
    "board.silent": ("Diam", "Silent"),
    "board.overflowed": ("Dilimpahkan", "Overflowed"),
    "board.categories": ("Antrean per kategori", "Queues by category"),
    "board.category": ("Kategori", "Category"),
    "board.waiting": ("Menunggu", "Waiting"),
    "board.ages": ("Lama tunggu", "Waiting for"),
    "board.longest": ("Tunggu terlama", "Longest wait"),
    "board.sl": ("Tingkat layanan hari ini", "Service level today"),
    "board.target": ("target", "target"),
    "board.oldest": ("Panggilan menunggu terlama", "Oldest waiting call"),
    "board.nobody_waiting": ("Tidak ada yang menunggu", "Nobody waiting"),
    "board.goal": (
        "Tingkat layanan hari ini {seconds} d: {ratio} (target {target})",
        "SL today {seconds} s: {ratio} (target {target})",
    ),
    "board.operators": ("Operator", "Operators"),
    "board.operator": ("Operator", "Operator"),
    "board.state": ("Status", "State"),
    "board.in_state": ("Lama", "For"),
    "board.reason": ("Alasan", "Reason"),
    "board.actions": ("Tindakan", "Actions"),
    "board.calls": ("Panggilan berlangsung", "Calls in progress"),
    "board.no_calls": ("Tidak ada panggilan.", "No calls."),
    "board.number": ("Nomor", "Number"),
    "board.call_state": ("Tahap", "Stage"),
    "board.age": ("Umur", "Age"),
    "board.pause": ("Jeda", "Pause"),
    "board.logout": ("Keluarkan", "Log out"),
    "board.ready": ("Siapkan", "Make ready"),
    "board.listen": ("Dengar", "Listen"),
    "board.whisper": ("Bisik", "Whisper"),
    "board.barge": ("Masuk", "Barge"),
    "board.blocks": ("Nomor diblokir", "Blocked numbers"),
    "board.block": ("Blokir", "Block"),
    "board.unblock": ("Cabut blokir", "Unblock"),
    "board.block_number": ("Nomor", "Number"),
    "board.block_reason": ("Alasan", "Reason"),
    "board.block_hours": ("Jam (kosong = tanpa batas)", "Hours (empty = no limit)"),
    "board.blocked_by": ("Oleh", "By"),
    "board.blocked_at": ("Sejak", "Since"),
    "board.blocked_until": ("Sampai", "Until"),
    "board.no_blocks": ("Tidak ada.", "None."),
    "board.connection_lost": ("Koneksi terputus, menyambung ulang…", "Connection lost, retrying…"),
    # call log
    "calls.title": ("Log panggilan", "Call log"),
    "calls.number": ("Nomor", "Number"),
    "calls.from": ("Dari tanggal", "From date"),
    "calls.to": ("Sampai tanggal", "To date"),
    "calls.category": ("Kategori", "Category"),
    "calls.operator": ("Operator", "Operator"),
    "calls.outcome": ("Hasil", "Outcome"),
    "calls.verdict": ("Disposisi", "Disposition"),
    "calls.flags": ("Tanda", "Flags"),
    "calls.any": ("semua", "any"),
    "calls.search": ("Cari", "Search"),
    "calls.export": ("Ekspor CSV", "Export CSV"),
    "calls.arrived": ("Waktu", "Time"),
    "calls.name": ("Nama", "Name"),
    "calls.wait": ("Tunggu (d)", "Wait (s)"),
    "calls.talk": ("Bicara (d)", "Talk (s)"),
    "calls.none": ("Tidak ada panggilan yang cocok.", "No matching calls."),
    "calls.count": ("panggilan", "calls"),
    "calls.own_only": ("Hanya panggilan Anda.", "Your calls only."),
    "call.title": ("Panggilan", "Call"),
    "call.details": ("Rincian", "Details"),
    "call.timeline": ("Kronologi", "Timeline"),
    "call.dispositions": ("Disposisi", "Dispositions"),
    "call.recording": ("Rekaman", "Recording"),
    "call.recording_note": (
        "Setiap pemutaran dicatat dalam audit.",
        "Every playback is recorded in the audit.",
    ),
    "call.no_recording": ("Tidak ada rekaman.", "No recording."),
    "call.event": ("Kejadian", "Event"),
    "call.at": ("Waktu", "At"),
    "call.data": ("Data", "Data"),
    "call.agencies": ("Instansi", "Agencies"),
    "call.hangup_by": ("Ditutup oleh", "Hung up by"),
    "call.connected_at": ("Tersambung", "Connected"),
    "call.ended_at": ("Selesai", "Ended"),
    # reports
    "reports.title": ("Laporan", "Reports"),
    "reports.from": ("Dari", "From"),
    "reports.to": ("Sampai", "To"),
    "reports.by": ("Per", "By"),
    "reports.hour": ("jam", "hour"),
    "reports.day": ("hari", "day"),
    "reports.month": ("bulan", "month"),
    "reports.show": ("Tampilkan", "Show"),
    "reports.total": ("Jumlah", "Total"),
    "reports.bucket": ("Periode", "Period"),
    "reports.sl": ("Tingkat layanan", "Service level"),
    "reports.asa": ("Rata-rata tunggu dijawab (d)", "Average speed of answer (s)"),
    "reports.longest": ("Tunggu terlama (d)", "Longest wait (s)"),
    "reports.short": ("Ditinggal < 5 d", "Abandoned < 5 s"),
    "reports.prank_share": ("Porsi iseng", "Prank share"),
    "reports.silent_share": ("Porsi diam", "Silent share"),
    "reports.chart_calls": ("Panggilan dijawab dan ditinggalkan", "Answered and abandoned calls"),
    "reports.chart_sl": ("Tingkat layanan (10 d)", "Service level (10 s)"),
    "reports.operators": ("Waktu operator (menit)", "Operator time (minutes)"),
    "reports.logged_in": ("Masuk", "Logged in"),
    "reports.talk": ("Bicara", "Talk"),
    "reports.wrap_up": ("Penyelesaian", "Wrap-up"),
    "reports.paused": ("Jeda", "Paused"),
    "reports.calls": ("Panggilan", "Calls"),
    "reports.by_category": ("Per kategori", "By category"),
    "reports.human": ("Waktu sampai ke operator (d)", "Time to a human (s)"),
    "reports.to_ring": ("Sampai operator berdering", "To an operator ringing"),
    "reports.to_answer": ("Sampai operator menjawab", "To an operator answering"),
    "reports.offered": ("Ditawarkan", "Offered"),
    "reports.percentiles": (
        "Dihitung dari kedatangan di Asterisk. p50/p90/p99: separuh / 90 % / 99 % panggilan"
        " tidak lebih lama dari ini.",
        "From the arrival at Asterisk. p50/p90/p99: half / 90 % / 99 % of the calls took no"
        " longer.",
    ),
    "reports.by_route": ("Per jalur masuk", "By route"),
    "reports.route": ("Jalur", "Route"),
    "reports.route_rule": (
        "Jalur pertama yang cocok: cadangan dialplan, limpahan, tidak bisa bicara (55), tanpa"
        " pilihan, nomor diblokir, pilih menu.",
        "The first route that applies: dialplan fallback, overflow, cannot speak (55), no choice"
        " in time, blocked number, menu digit.",
    ),
    "route.fallback": ("Cadangan dialplan", "Dialplan fallback"),
    "route.overflow": ("Limpahan", "Overflow"),
    "route.cannot_speak": ("Tidak bisa bicara (55)", "Cannot speak (55)"),
    "route.no_input": ("Tanpa pilihan", "No choice in time"),
    "route.screened": ("Nomor diblokir", "Blocked number"),
    "route.digit": ("Pilih menu", "Menu digit"),
    # audit
    "audit.title": ("Audit dan pengguna", "Audit and users"),
    "audit.users": ("Pengguna", "Users"),
    "audit.entries": ("Catatan audit", "Audit entries"),
    "audit.user": ("Pengguna", "User"),
    "audit.role": ("Peran", "Role"),
    "audit.action": ("Tindakan", "Action"),
    "audit.target": ("Sasaran", "Target"),
    "audit.client": ("Alamat", "Client"),
    "audit.at": ("Waktu", "At"),
    "audit.disabled": ("nonaktif", "disabled"),
    "audit.dev_password": ("kata sandi pengembangan", "development password"),
    "audit.operator_id": ("ID operator", "Operator id"),
    "audit.phone": ("Telepon", "Phone"),
    # -- alarms and the wallboard (supervisor/alerts.py, wallboard.html) ---------------------
    "alert.title": ("Alarm", "Alarms"),
    "alert.none": ("Tidak ada alarm.", "No alarms."),
    "alert.severity.critical": ("KRITIS", "CRITICAL"),
    "alert.severity.warning": ("PERINGATAN", "WARNING"),
    # {category} {count} {target} {wait}: filled in by supervisor/board.py
    "alert.overdue": (
        "{category}: {count} panggilan darurat melewati target {target} d, terlama {wait}",
        "{category}: {count} emergency call(s) past the {target} s target, longest {wait}",
    ),
    "alert.no_operator": (
        "{count} panggilan menunggu dan tidak ada operator yang siap (terlama {wait})",
        "{count} call(s) waiting and no operator ready (longest {wait})",
    ),
    "alert.service_level": (
        "Tingkat layanan hari ini {ratio}, di bawah target {target} dalam {seconds} d",
        "Today's service level {ratio}, below the target of {target} within {seconds} s",
    ),
    "alert.unavailable.ari": (
        "Aplikasi tidak terhubung ke Asterisk: panggilan ditangani cadangan dialplan",
        "The app is not connected to Asterisk: calls go to the dialplan fallback",
    ),
    "alert.unavailable.database": (
        "Basis data tidak terjangkau: catatan menunggu di jurnal",
        "The database is unreachable: records wait in the journal",
    ),
    "alert.degraded.journal": (
        "Jurnal catatan tidak dapat ditulis",
        "The record journal cannot be written",
    ),
    "alert.degraded.disk": (
        "Ruang disk hampir habis: {folder}",
        "Disk space running low: {folder}",
    ),
    "alert.acknowledge": ("Ketahui", "Acknowledge"),
    "alert.acknowledged_by": ("diketahui oleh", "acknowledged by"),
    "alert.for": ("sejak", "for"),
    "alert.notifications": ("Aktifkan notifikasi", "Turn on notifications"),
    "alert.offered": ("Panggilan masuk", "Incoming call"),
    "msg.alert_acknowledged": ("Alarm diketahui.", "Alarm acknowledged."),
    "msg.alert_gone": ("Alarm sudah berakhir.", "The alarm has already ended."),
    "wall.title": ("Papan dinding", "Wallboard"),
    "wall.open": ("Papan dinding", "Wallboard"),
    "wall.waiting": ("menunggu", "waiting"),
    "wall.oldest": ("terlama", "oldest"),
    "wall.target": ("target", "target"),
    "wall.sl": (
        "Tingkat layanan hari ini dalam {seconds} d",
        "Service level today within {seconds} s",
    ),
    "wall.goal": ("target {target}", "target {target}"),
    "wall.operators": ("Operator", "Operators"),
}


def language(value: str | None) -> str:
    return value if value in LANGUAGES else DEFAULT_LANGUAGE


def translate(key: str, lang: str) -> str:
    """The message in `lang`; an unknown key is shown as itself (never an error page)."""
    pair = MESSAGES.get(key)
    if pair is None:
        return key
    return pair[0] if lang == "id" else pair[1]


def label(prefix: str, value: str, lang: str) -> str:
    """The message for `prefix + value`, or the value itself (e.g. a centre's own pause reason)."""
    return translate(prefix + value, lang) if prefix + value in MESSAGES else value


def catalogue(lang: str) -> dict[str, str]:
    """Every message in one language, for the browser."""
    index = 0 if lang == "id" else 1
    return {key: pair[index] for key, pair in MESSAGES.items()}
