"""Known tones for audio checks: a wav for a browser's fake microphone, an RTP (G.711 A-law)
pcap for a SIPp caller, and the share of a recording's energy at a frequency (Goertzel)."""

from __future__ import annotations

import math
import shutil
import struct
import subprocess
import tempfile
import wave
from array import array
from pathlib import Path

RTP_PAYLOAD_PCMA = 8
_SAMPLES_PER_PACKET = 160  # 20 ms at 8 kHz


def tone_wav(
    frequency: int, seconds: float, path: Path, *, rate: int = 48000, pulse: float = 0.0
) -> Path:
    """A 16-bit mono wav of a sine (sox). `pulse` > 0: that many seconds on, as many off, like
    speech with its pauses (a browser's noise suppression fades out a tone that never stops)."""
    if pulse > 0:
        repeats = max(0, round(seconds / (2 * pulse)) - 1)
        _sox("-n", "-r", str(rate), "-c", "1", "-b", "16", str(path), "synth", f"{pulse:g}",
             "sine", str(frequency), "vol", "0.5", "pad", "0", f"{pulse:g}", "repeat",
             str(repeats))  # fmt: skip
    else:
        _sox("-n", "-r", str(rate), "-c", "1", "-b", "16", str(path), "synth", f"{seconds:g}",
             "sine", str(frequency), "vol", "0.5")  # fmt: skip
    return path


def tone_pcap(frequency: int, seconds: float, folder: Path | None = None) -> Path:
    """RTP packets of a sine in G.711 A-law, 20 ms apart, for SIPp's play_pcap_audio."""
    folder = folder or Path(tempfile.gettempdir()) / "siaga-tones"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"tone-{frequency}-{seconds:g}.pcap"
    if path.exists():
        return path
    alaw = folder / f"tone-{frequency}-{seconds:g}.al"
    _sox("-n", "-r", "8000", "-c", "1", "-e", "a-law", "-t", "al", str(alaw), "synth",
         f"{seconds:g}", "sine", str(frequency), "vol", "0.5")  # fmt: skip
    payload = alaw.read_bytes()
    alaw.unlink()
    tmp = path.with_suffix(".tmp")
    with tmp.open("wb") as out:
        out.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for n, start in enumerate(range(0, len(payload), _SAMPLES_PER_PACKET)):
            chunk = payload[start : start + _SAMPLES_PER_PACKET]
            marker = 0x80 if n == 0 else 0
            rtp = struct.pack("!BBHII", 0x80, marker | RTP_PAYLOAD_PCMA, n & 0xFFFF, start,
                              0x70E5112) + chunk  # fmt: skip
            udp = struct.pack("!HHHH", 6000, 6002, 8 + len(rtp), 0) + rtp
            ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0,
                             bytes([127, 0, 0, 1]), bytes([127, 0, 0, 1]))  # fmt: skip
            frame = b"\x00" * 12 + b"\x08\x00" + ip + udp
            at = n * 0.02
            whole = int(at)
            out.write(
                struct.pack("<IIII", whole, round((at - whole) * 1e6), len(frame), len(frame))
            )
            out.write(frame)
    tmp.replace(path)
    return path


def tone_shares(path: Path, frequencies: tuple[int, ...], window: float = 0.1) -> list[list[float]]:
    """For each `window` seconds of a 16-bit mono wav, the share of its energy at each of
    `frequencies` (0..1)."""
    with wave.open(str(path)) as wav:
        rate = wav.getframerate()
        samples = array("h", wav.readframes(wav.getnframes()))
    size = int(rate * window)
    shares = []
    for start in range(0, len(samples) - size + 1, size):
        chunk = samples[start : start + size]
        total = sum(x * x for x in chunk)
        row = []
        for frequency in frequencies:
            # Goertzel: the power of one DFT bin; a pure sine puts about N^2/4 * A^2 in its
            # bin and N/2 * A^2 in the sum of squares, so 2 * power / (N * total) is its share.
            k = 2 * math.cos(2 * math.pi * frequency / rate)
            s1 = s2 = 0.0
            for x in chunk:
                s1, s2 = x + k * s1 - s2, s1
            power = s1 * s1 + s2 * s2 - k * s1 * s2
            row.append(2 * power / (size * total) if total else 0.0)
        shares.append(row)
    return shares


def _sox(*args: str) -> None:
    binary = shutil.which("sox")
    if binary is None:
        raise RuntimeError("sox is missing: apt-get install sox")
    subprocess.run([binary, *args], check=True, capture_output=True)
