"""Bytes -> text: UTF-8 (BOM or not), UTF-16/32 with a BOM, the encoding the caller names, or the one legacy encoding
that clearly fits (never a silent guess between readings that differ)."""
from __future__ import annotations

import codecs
import re
import unicodedata

from embedlab.errors import InputError

WIDE_BOMS = (codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)
_BOMS = ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
         (codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"),
         (codecs.BOM_UTF16_BE, "utf-16"))


def wide_encoding(encoding: str | None) -> bool:
    """UTF-16/32: a text's bytes in the file may outnumber its UTF-8 bytes."""
    return bool(encoding) and codecs.lookup(str(encoding)).name.startswith(("utf-16", "utf-32"))


def check_encoding_name(encoding: str | None, file: str) -> str | None:
    if encoding is None or encoding == "":
        return None
    try:
        return codecs.lookup(str(encoding)).name
    except LookupError:
        raise InputError(f"unknown encoding {encoding!r} (try utf-8, cp1252, cp1251, gb18030, "
                         "shift_jis)", file=file) from None


def decode_text(data: bytes, file: str, encoding: str | None = None) -> tuple[str, str]:
    """Bytes -> (text, encoding); refuses binary data, broken UTF-8 and undecidable encodings."""
    if encoding is not None:                   # named by the user: exactly that, strictly
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError as e:
            raise InputError(f"not valid {encoding} text: bad byte {data[e.start]:#04x} at byte "
                             f"{e.start}, line {_line_of(data, e.start)}", file=file) from None
        return text.removeprefix("\ufeff"), encoding
    for bom, bom_encoding in _BOMS:
        if data.startswith(bom):
            try:
                return data.decode(bom_encoding), bom_encoding
            except UnicodeDecodeError as e:
                raise InputError(f"not valid {bom_encoding.upper().removesuffix('-SIG')} text "
                                 f"(bad bytes at byte {e.start})", file=file) from None
    nul = data.find(b"\x00")
    if nul >= 0:
        head = data[:4096]
        utf16 = max(head[0::2].count(0), head[1::2].count(0)) > len(head) // 4
        hint = "UTF-16 without a byte-order mark? save it as UTF-8" if utf16 else "binary data?"
        raise InputError(f"not a text file: it holds NUL bytes ({hint}), the first at byte "
                         f"{nul}, line {_line_of(data, nul)}", file=file)
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError as e:
        bad = e.start
    sample = data[:1_000_000].decode("utf-8", errors="replace")
    n_bad = sample.count("\ufffd")
    if sum(1 for ch in sample if ord(ch) > 127) - n_bad >= n_bad:   # mostly good UTF-8
        raise InputError(f"not valid UTF-8: bad byte {data[bad]:#04x} at byte {bad}, line "
                         f"{_line_of(data, bad)} (the rest of the file is UTF-8)",
                         file=file)
    encoding = _guess_legacy_encoding(data, file)
    try:
        return data.decode(encoding), encoding
    except UnicodeDecodeError as e:           # the guess came from a sample: the rest disagrees
        raise InputError(f"not valid UTF-8, and not valid {encoding} either (bad byte "
                         f"{data[e.start]:#04x} at byte {e.start}, line {_line_of(data, e.start)});"
                         " save it as UTF-8 or name its encoding (--encoding)", file=file) from None


def _line_of(data: bytes, pos: int) -> int:
    return data.count(b"\n", 0, pos) + 1


# Legacy encodings compared when a file is not UTF-8: the Windows code pages, KOI8 and the
# usual CJK ones (charset-normalizer's exotic candidates, mac_* or cp775, only produce ties).
LEGACY_ENCODINGS = ("cp1252", "cp1250", "cp1251", "cp1253", "cp1254", "cp1255", "cp1256",
                    "cp1257", "cp1258", "koi8_r", "koi8_u", "gb18030", "big5", "cp932", "euc_jp",
                    "cp949")
_SAMPLE_BYTES = 256 * 1024

# Non-ASCII letters of languages written in Latin script (lower case; upper case is derived).
_LATIN_ALPHABETS = {
    "French": "àâæçéèêëîïôœùûüÿ", "Spanish": "áéíñóúü", "Portuguese": "áâãàçéêíóôõú",
    "Italian": "àèéìíîòóùú", "German": "äöüß", "Dutch": "áéëíïóöúü", "Danish/Norwegian": "åæøéó",
    "Swedish/Finnish": "åäöé", "Icelandic": "áðéíóúýþæö", "Catalan": "àçèéíïòóúü·",
    "Czech/Slovak": "áäčďéěíĺľňóôŕřšťúůýž", "Polish": "ąćęłńóśźż", "Hungarian": "áéíóöőúüű",
    "Romanian": "ăâîșțşţ", "Croatian/Slovene": "čćđšž", "Turkish": "çğıİöşüâîû",
    "Lithuanian/Latvian": "ąčęėįšųūžāēģīķļņ", "Estonian": "äöõüšž", "Albanian": "çë",
}

# Letter repertoires of the Western and Central European code pages, for corpora mixing languages.
_REGIONS = {"Western European": ("French", "Spanish", "Portuguese", "Italian", "German", "Dutch",
                                 "Danish/Norwegian", "Swedish/Finnish", "Icelandic", "Catalan",
                                 "Albanian", "Estonian"),
            "Central European": ("Czech/Slovak", "Polish", "Hungarian", "Romanian",
                                 "Croatian/Slovene", "German")}
_SCRIPT_GROUPS = {"CYRILLIC": "Cyrillic", "GREEK": "Greek", "HEBREW": "Hebrew", "ARABIC": "Arabic",
                  "THAI": "Thai", "HANGUL": "Korean"}


def _letter_languages() -> dict[str, set[str]]:
    table: dict[str, set[str]] = {}
    for language, letters in _LATIN_ALPHABETS.items():
        regions = {r for r, members in _REGIONS.items() if language in members}
        for ch in letters:
            for form in {ch, ch.upper()}:
                if len(form) == 1:
                    table.setdefault(form, set()).update({language, *regions})
    return table


_LETTER_LANGUAGES = _letter_languages()
_MIXED_WORD_RE = re.compile(r"[^\W\d_]*[A-Za-z][^\W\d_]*")   # words holding an ASCII letter


def _languages_of(ch: str) -> set[str]:
    """The languages (Latin letters) or scripts a non-ASCII letter belongs to."""
    if ch in _LETTER_LANGUAGES:
        return _LETTER_LANGUAGES[ch]
    name = unicodedata.name(ch, "")
    if name.startswith(("CJK ", "IDEOGRAPHIC")):
        return {"Chinese", "Japanese"}
    if name.startswith(("HIRAGANA", "KATAKANA", "HALFWIDTH KATAKANA")):
        return {"Japanese"}
    first = name.split(" ", 1)[0]
    return {_SCRIPT_GROUPS[first]} if first in _SCRIPT_GROUPS else set()


def _text_fit(text: str) -> tuple[float, str, bool]:
    """How plausible a decoding is: (share of its non-ASCII letters that one language's alphabet,
    or one script, covers; that language; whether it is free of control and unassigned characters).
    Two Latin languages together also count, a little less (a bilingual corpus), so a mojibake
    mixing letters of three alphabets scores low."""
    counts: dict[str, int] = {}
    for ch in text:
        if ord(ch) > 127:
            counts[ch] = counts.get(ch, 0) + 1
    odd = sum(1 for ch in text if ord(ch) < 32 and ch not in "\t\n\r\x0b\x0c")
    letters: dict[str, int] = {}
    marks = 0
    for ch, n in counts.items():
        category = unicodedata.category(ch)
        if category in ("Cc", "Co", "Cn", "Cs"):
            odd += n
        elif category == "Mn":
            marks += n
        elif category.startswith("L"):
            letters[ch] = n
    clean = odd <= len(text) // 1000
    total = sum(letters.values())
    if not total:
        return 1.0, "", clean
    # A letter of another script inside a word of ASCII letters ("cafй") fits no language.
    misfit: dict[str, int] = {}
    if any(not _LETTER_LANGUAGES.get(ch) for ch in letters):
        for word in _MIXED_WORD_RE.findall(text):
            for ch in word:
                if ord(ch) > 127 and ch in letters and ch not in _LETTER_LANGUAGES:
                    misfit[ch] = misfit.get(ch, 0) + 1
    by_language: dict[str, int] = {}
    for ch, n in letters.items():
        for language in _languages_of(ch):
            by_language[language] = by_language.get(language, 0) + n - misfit.get(ch, 0)
    best, best_language = 0.0, ""
    for language, n in by_language.items():
        weight = 0.95 if language in _REGIONS else 1.0      # a region: a little less specific
        if weight * n / total > best:
            best, best_language = weight * n / total, language
    if best < 1.0:                               # two Latin languages together
        latin = [lang for lang in by_language if lang in _LATIN_ALPHABETS]
        for i, a in enumerate(latin):
            for b in latin[i + 1:]:
                n = sum(v for ch, v in letters.items()
                        if a in _languages_of(ch) or b in _languages_of(ch))
                if 0.97 * n / total > best:
                    best, best_language = 0.97 * n / total, f"{a}+{b}"
    if marks > 0.3 * total:                      # more combining marks than a script uses
        best *= 0.5
    return best, best_language, clean


def _guess_legacy_encoding(data: bytes, file: str) -> str:
    """The one legacy encoding that clearly fits a non-UTF-8 file, else InputError naming the
    encodings that fit equally (never a silent guess between readings that differ)."""
    import charset_normalizer

    sample = data[:_SAMPLE_BYTES]
    if len(data) > _SAMPLE_BYTES and b"\n" in sample[len(sample) // 2:]:
        sample = sample[:sample.rindex(b"\n") + 1]      # no multi-byte character cut in two
    scored = []
    for m in charset_normalizer.from_bytes(sample, cp_isolation=list(LEGACY_ENCODINGS)):
        try:
            text = codecs.getincrementaldecoder(m.encoding)().decode(sample, final=False)
        except (UnicodeDecodeError, LookupError):
            continue
        fit, language, clean = _text_fit(text)
        same = [codecs.lookup(e).name for e in (m.could_be_from_charset or [m.encoding])]
        name = "cp1252" if "cp1252" in same else codecs.lookup(m.encoding).name
        if clean:
            scored.append((fit, m.chaos, m.coherence, name, language, text))
    if not scored:
        raise InputError("not a text file: the bytes are neither UTF-8 nor text in a known "
                         "encoding (binary data?)", file=file)
    best_fit = max(s[0] for s in scored)
    best_chaos = min(s[1] for s in scored if s[0] >= best_fit - 0.02)
    leaders = [s for s in scored if s[0] >= best_fit - 0.02 and s[1] <= best_chaos + 0.02]
    top_coherence = max(s[2] for s in leaders)
    if len(leaders) > 1 and sum(1 for s in leaders if s[2] >= top_coherence - 0.03) == 1:
        leaders = [s for s in leaders if s[2] >= top_coherence - 0.03]
    texts = {s[5] for s in leaders}
    # Latin code pages tie: Windows-1252, by far the most common. Its chaos may be a little higher on a few lines
    # (an em dash, curly quotes), which must not hand the file to cp1257 ("crème" read as "crčme").
    if best_fit >= 0.9 and any(s[3] == "cp1252" and s[0] >= best_fit - 0.02 and s[1] <= best_chaos + 0.15
                               for s in scored):
        return "cp1252"
    if best_fit >= 0.9 and len(texts) == 1:
        return next((s[3] for s in leaders if s[3] == "cp1252"), leaders[0][3])
    ranked = sorted(scored, key=lambda s: (-round(s[0], 2), s[1], -s[2]))
    names = [f"{s[3]} ({s[4]})" if s[4] else s[3] for s in ranked[:4]]
    listed = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]
    raise InputError(f"not UTF-8, and its encoding cannot be told for sure: it could be {listed};"
                     f" save it as UTF-8, or name the encoding (--encoding {ranked[0][3]})",
                     file=file)
