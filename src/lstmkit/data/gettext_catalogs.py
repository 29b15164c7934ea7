"""A parallel English -> X corpus from the gettext catalogs installed on the machine.

Debian packages install their translations as compiled gettext catalogs,
``/usr/share/locale/LANG/LC_MESSAGES/DOMAIN.mo``: each maps an English message (msgid)
to its translation (msgstr). Tens of thousands of human-translated pairs per language
sit on most machines, ready without a download, which makes them a handy corpus for
trying the translation task.

The pipeline, one function each:

- :func:`read_catalog`: the raw pairs of one ``.mo`` file (header dropped, contexts
  dropped, plural entries turned into a singular and a plural pair);
- :func:`clean_pair`: normalise one pair (whitespace, keyboard accelerators) or reject
  it (empty, no words, broken placeholders, untranslated copy, too long);
- :func:`gettext_pairs`: every catalog of one language, cleaned, one translation per
  English string;
- :func:`write_pairs_tsv` and :func:`corpus_summary`: a ``source<TAB>target`` table and
  its counts.

The translate task splits such a table by a stable hash of the English string
(:func:`lstmkit.data.parallel_text.source_part`), so a string lands in the same part for
every target language.

Standard library only (no torch): building a corpus should not need the model stack.
"""

from __future__ import annotations

import gettext
import io
import logging
import re
import struct
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from lstmkit.errors import LstmkitError, option_name
from lstmkit.io.files import atomic_write_text

logger = logging.getLogger("lstmkit.data")

DEFAULT_LOCALE_DIR = "/usr/share/locale"
MAX_WORDS = 80
"""Longer entries (either side) are dropped: they are licence texts, ``--help`` pages and
other multi-paragraph blocks, not sentences, and would dominate a sentence-level model."""

IDENTICAL_MAX_WORDS = 2
"""A target identical to its source is kept only up to this many words. Short copies are
usually right (names, acronyms, "Status", "Filter", place names); a copied phrase of
three or more words is almost always a message the translator left in English."""


@dataclass(frozen=True)
class CatalogPair:
    """One English message and its translation; ``domain`` is the catalog it came from
    (the ``.mo`` file's stem, e.g. ``coreutils``), kept to trace a pair back."""

    source: str
    target: str
    domain: str


# --------------------------------------------------------------------------- reading

_LE_MAGIC = 0x950412DE
_BE_MAGIC = 0xDE120495


def _damaged(path: Path, why: str) -> LstmkitError:
    return LstmkitError(f"{path} is not a usable gettext catalog ({why}); the file is "
                        "damaged: reinstall the package that owns it (dpkg -S names it) "
                        "or leave it out")


def _string_tables(data: bytes, path: Path) -> list[tuple[bytes, int, int]]:
    """(original bytes, translation offset, translation length) of every entry.

    The stdlib parses the same tables; we read them too for two things it does not give:
    the plural msgid (it keeps only the singular) and the header's position (to repair
    it, see :func:`_header_for_stdlib`). Bounds are checked here so a truncated file is
    reported as damaged instead of failing deep inside the stdlib."""
    if len(data) < 20:
        raise _damaged(path, f"{len(data)} bytes, too short for the .mo header")
    magic = int.from_bytes(data[:4], "little")
    if magic not in (_LE_MAGIC, _BE_MAGIC):
        raise _damaged(path, "wrong magic number, not a compiled .mo file")
    order = "<" if magic == _LE_MAGIC else ">"
    _revision, count, originals_at, translations_at = struct.unpack(order + "4I", data[4:20])
    for table in (originals_at, translations_at):
        if table + 8 * count > len(data):
            raise _damaged(path, f"its string table of {count} entries runs past the end")
    originals = struct.iter_unpack(order + "II", data[originals_at:originals_at + 8 * count])
    translations = struct.iter_unpack(order + "II",
                                      data[translations_at:translations_at + 8 * count])
    entries = []
    for (original_length, original_at), (length, at) in zip(originals, translations):
        if original_at + original_length >= len(data) or at + length >= len(data):
            raise _damaged(path, "a string runs past the end of the file")
        entries.append((data[original_at:original_at + original_length], at, length))
    return entries


def _usable_plural_rule(value: bytes) -> bool:
    """Whether the stdlib can use this ``Plural-Forms`` value (it parses it unchecked)."""
    try:
        parts = value.decode("ascii").split(";")
        if len(parts) < 2 or "plural=" not in parts[1]:
            return False
        rule = gettext.c2py(parts[1].split("plural=")[1])
        for n in range(101):
            rule(n)
    except (UnicodeDecodeError, ValueError, ArithmeticError):
        return False
    return True


def _header_for_stdlib(header: bytes) -> bytes:
    """The header keeping only its Content-Type and Plural-Forms lines, padded with blank
    lines to the same length (so every offset in the file stays valid).

    Why: ``GNUTranslations`` decodes every header line as UTF-8 and parses Plural-Forms
    without checking it, so an old catalog whose Last-Translator is spelt in Latin-1
    (Debian's net-tools, tar, diffutils for some languages) or one whose header says
    ``Plural-Forms: 2`` fails to load although all its messages are fine. Those two
    lines are all the stdlib needs; an unusable plural rule is dropped and the stdlib
    falls back to its English rule (n != 1)."""
    kept = []
    for line in header.split(b"\n"):
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if not line.isascii():
            continue
        if ((name == b"content-type" and b"charset=" in value)
                or (name == b"plural-forms" and _usable_plural_rule(value))):
            kept.append(line)
    text = b"\n".join(kept)
    return text + b"\n" * (len(header) - len(text))


def _plural_form(rule) -> int:
    """The plural form most English plurals (n = 2..100) take in the target language:
    German's "Dateien", Russian's "файлов" (5-20, 25-30, ...), Japanese's only form."""
    forms = Counter(rule(n) for n in range(2, 101))
    return min(forms, key=lambda form: (-forms[form], form))


def _without_context(msgid: str) -> str:
    """``msgctxt`` is stored as ``context + "\\x04" + msgid``; the context only tells
    translators apart two uses of one string, so it is dropped."""
    return msgid.split("\x04", 1)[1] if "\x04" in msgid else msgid


def read_catalog(path: str | Path) -> list[CatalogPair]:
    """The (uncleaned) message pairs of one ``.mo`` file, in the file's order.

    The header entry (empty msgid) is dropped and message contexts are stripped. A
    plural entry gives two pairs: the singular msgid with the form the language uses
    for n = 1, and the plural msgid with the form most plurals take (see
    :func:`_plural_form`); so "%d file" -> "%d Datei" and "%d files" -> "%d Dateien".
    Messages with system-dependent parts (``<PRIu64>``, stored apart in revision 1 files)
    are not read by the stdlib and so are missing. A file that cannot be read raises
    :class:`LstmkitError` naming it.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise LstmkitError(f"{path} does not exist; check the path") from None
    except OSError as error:
        raise LstmkitError(f"cannot read {path} ({error.strerror or error}); check its "
                           "permissions") from error
    entries = _string_tables(data, path)
    repaired = bytearray(data)
    plural_ids: dict[bytes, bytes] = {}  # singular msgid (with context) -> plural msgid
    for original, at, length in entries:
        if not original:
            repaired[at:at + length] = _header_for_stdlib(data[at:at + length])
        elif b"\x00" in original:
            singular, _, plural = original.partition(b"\x00")
            plural_ids[singular] = plural
    try:
        translations = gettext.GNUTranslations(io.BytesIO(bytes(repaired)))
        charset = translations.charset() or "ascii"
        plurals = {singular.decode(charset): plural.decode(charset)
                   for singular, plural in plural_ids.items()}
        singular_form = translations.plural(1)
        plural_form = _plural_form(translations.plural)
    except (OSError, UnicodeDecodeError, ValueError, IndexError, struct.error) as error:
        raise _damaged(path, str(error) or type(error).__name__) from error
    except LookupError as error:  # after IndexError, which is a LookupError too
        raise _damaged(path, f"unknown charset: {error}") from error
    # The stdlib parses .mo files but has no public way to list their messages (only to
    # look one up), so the parsed dict, the private ``_catalog``, is read directly. Its
    # keys are msgid strings, or (singular msgid, form index) for plural entries; the
    # plural msgid itself is thrown away by the stdlib, hence ``plural_ids`` above.
    domain = path.stem
    pairs = []
    for key, text in translations._catalog.items():
        if isinstance(key, tuple):
            msgid, form = key
            if form == singular_form:
                pairs.append(CatalogPair(_without_context(msgid), text, domain))
            if form == plural_form and msgid in plurals:
                pairs.append(CatalogPair(plurals[msgid], text, domain))
        elif key:  # the empty msgid is the header: metadata, not a message
            pairs.append(CatalogPair(_without_context(key), text, domain))
    return pairs


# -------------------------------------------------------------------------- cleaning

_LETTER = re.compile(r"[^\W\d_]")  # a word character that is no digit or underscore
_PLACEHOLDER = re.compile(
    r"%%"  # a literal percent sign, not a placeholder
    r"|%\((?P<name>\w+)\)[-+#0 ]*\d*(?:\.\d+)?(?P<named>[diouxXeEfFgGcrsa])"  # %(name)s
    r"|%(?:\d+\$)?[-+#0'I]*(?:\d+|\*(?:\d+\$)?)?(?:\.(?:\d+|\*(?:\d+\$)?))?"  # C printf
    r"(?P<printf>(?:hh|h|ll|l|L|q|j|z|Z|t)?[diouxXeEfFgGaAcCsSpn])"
    r"|(?P<qt>%\d+)"  # Qt / KDE: %1
    r"|(?P<brace>\{\w*\})"  # Python / C#: {0} {name} {}
)
_STRFTIME = re.compile(r"%[-_0^#]?[A-Za-z]")  # dates: "%b %e %H:%M", and glibc's %m
_NOT_WORDS = re.compile(
    r"(?:https?|ftp)://\S+|www\.\S+"  # URLs
    r"|[\w.+-]+@[\w-]+(?:\.[\w-]+)+"  # e-mail addresses
    r"|(?<!\S)~?/[\w./-]*"  # absolute paths
)
# Keyboard accelerators: GTK marks the key with "_" ("_File"), Qt/KDE with "&" ("&Open");
# Chinese, Japanese and Korean translations add the Latin key in brackets ("文件(_F)").
_BRACKETED_ACCELERATOR = re.compile(r"\s*\([_&][^\W_]\)")
_WORD_START = r"(?<![^\s(\[\"'‘“„«])"  # at the start, or after a space, bracket or quote
_SOURCE_ACCELERATOR = {
    # at the start of a word, the word holding no other marker: "_File", "Save _As"
    # ("_open_osfhandle", "pam_*_item", "__init__" and "LC_COLLATE" are identifiers)
    "_": re.compile(_WORD_START + r"_(?=[^\W_]+(?!\w))"),
    "&": re.compile(_WORD_START + r"&(?=[^\W_]+(?![\w&;]))"),  # not "a & b", "&&", "&lt;"
}
_MID_WORD_ACCELERATOR = {
    # inside a capitalised word: "Pag_es:", "Cu_t"; lower-case "index_name" and upper-case
    # "LC_COLLATE" / "AT&T" are identifiers and names
    "_": re.compile(_WORD_START + r"[A-Z][a-z]*_(?=[a-z]+(?![\w&]))"),
    "&": re.compile(_WORD_START + r"[A-Z][a-z]*&(?=[a-z]+(?![\w&]))"),
}
_TARGET_TOKEN = {"_": re.compile(r"\w+"), "&": re.compile(r"[\w&;#]+")}


def _source_accelerator(source: str) -> tuple[str, int] | None:
    """(marker, position) of the one keyboard accelerator in an English message, if any.

    A message has at most one accelerator, so two candidates mean something else."""
    for marker in "_&":
        found = list(_SOURCE_ACCELERATOR[marker].finditer(source))
        if len(found) == 1:
            return marker, found[0].start()
        if not found:
            mid_word = list(_MID_WORD_ACCELERATOR[marker].finditer(source))
            if len(mid_word) == 1 and source.count(marker) == 1:
                return marker, mid_word[0].end() - 1
    return None


def _drop_target_accelerator(target: str, marker: str, source: str) -> str:
    """The translation without its accelerator ``marker``: the first one inside a word
    (translators place it anywhere, "O_rt kopieren") that is not an identifier or entity
    the English message also contains ("LC_COLLATE", "&lt;")."""
    for token in _TARGET_TOKEN[marker].finditer(target):
        word = token.group()
        if word.count(marker) != 1 or word in source:
            continue
        at = word.index(marker)
        if at + 1 < len(word) and word[at + 1].isalnum() and not word.endswith(";"):
            position = token.start() + at
            return target[:position] + target[position + 1:]
    return target


def _without_accelerators(source: str, target: str) -> tuple[str, str]:
    """Remove keyboard accelerators on both sides, together: a translation's marker is
    removed when its English message had one, or when the English has no such marker at
    all and the translation one at a word start; identifiers ("LC_COLLATE") survive."""
    if "(" in target:
        target = _BRACKETED_ACCELERATOR.sub("", target)
    if not any(marker in text for marker in "_&" for text in (source, target)):
        return source, target  # the common case, kept fast
    source = _BRACKETED_ACCELERATOR.sub("", source)
    found = _source_accelerator(source)
    if found is None:
        for marker in "_&":  # the English lost its accelerator: "Add APT repository"
            if marker not in source:
                extra = list(_SOURCE_ACCELERATOR[marker].finditer(target))
                if len(extra) == 1:
                    position = extra[0].start()
                    target = target[:position] + target[position + 1:]
        return source, target
    marker, position = found
    source = source[:position] + source[position + 1:]
    return source, _drop_target_accelerator(target, marker, source)


_SAME_OUTPUT = str.maketrans("iXEFGA", "dxefga")  # %i prints as %d; %X as %x but in capitals


def _placeholders(text: str) -> Counter[str]:
    """The format placeholders of a message as a multiset, position, flags and width
    removed so a reordered "%2$s ... %1$d" matches "%d ... %s", "%'d" matches "%d", and
    a translator's "%02x" for "%02X" or "%i" for "%d" is no mismatch."""
    found: Counter[str] = Counter()
    if "%" not in text and "{" not in text:
        return found
    for match in _PLACEHOLDER.finditer(text):
        if match.group("name"):
            found[f"%({match.group('name')}){match.group('named')}"] += 1
        elif match.group("printf"):
            found["%" + match.group("printf").translate(_SAME_OUTPUT)] += 1
        elif match.group("qt") or match.group("brace"):
            found[match.group()] += 1
    return found


def _has_words(text: str) -> bool:
    """Whether any letter is left once placeholders (printf, strftime, ...), URLs, e-mail
    addresses and paths are taken out: "%s: %s", "%1$s/%2$s", "%H:%M", "---", "42" and a
    bare URL have none."""
    if "%" in text or "{" in text:
        text = _STRFTIME.sub(" ", _PLACEHOLDER.sub(" ", text))
    if "/" in text or "@" in text or "www." in text:
        text = _NOT_WORDS.sub(" ", text)
    return _LETTER.search(text) is not None


def clean_pair(source: str, target: str, max_words: int = MAX_WORDS) -> tuple[str, str] | None:
    """One pair normalised, or None when it is no good as a training sentence pair.

    Normalised: keyboard accelerators removed on both sides ("_File" / "_Datei" ->
    "File" / "Datei", "&Open" -> "Open", "打开(_O)" -> "打开"), runs of whitespace
    (newlines, tabs, no-break spaces) made one space, ends stripped.

    Dropped: an empty side; a side with no letters (format strings, separators,
    numbers, bare URLs); either side longer than ``max_words`` words; placeholders that
    differ between the sides as multisets ("%s" vs "%d": a broken translation that would
    teach the model to corrupt them); a target identical to a source of more than
    :data:`IDENTICAL_MAX_WORDS` words (a message left untranslated).
    """
    source, target = _without_accelerators(source, target)
    source = " ".join(source.split())  # str.split() splits at every Unicode space
    target = " ".join(target.split())
    if not source or not target:
        return None
    if not _has_words(source) or not _has_words(target):
        return None
    source_words = source.count(" ") + 1
    if source_words > max_words or target.count(" ") + 1 > max_words:
        return None
    if target == source and source_words > IDENTICAL_MAX_WORDS:
        return None
    if _placeholders(source) != _placeholders(target):
        return None
    return source, target


# ---------------------------------------------------------------------------- corpus

def _languages(locale_dir: Path) -> Counter[str]:
    """Language folder -> number of catalogs, for every language with at least one."""
    counts: Counter[str] = Counter()
    if locale_dir.is_dir():
        for folder in locale_dir.glob("*/LC_MESSAGES"):
            found = sum(1 for _ in folder.glob("*.mo"))
            if found:
                counts[folder.parent.name] = found
    return counts


def _no_catalogs(language: str, locale_dir: Path) -> LstmkitError:
    available = _languages(locale_dir)
    if not available:
        return LstmkitError(
            f"{locale_dir} holds no gettext catalogs (no {locale_dir}/LANG/LC_MESSAGES/*.mo); "
            "they come with installed packages unless the system strips translations "
            "(localepurge, a dpkg path-exclude, a minimal container image): use a machine "
            "or folder that has them")
    stem = re.split(r"[_@.-]", language.lower())[0]
    alike = sorted(name for name in available if name.lower().startswith(stem))
    largest = sorted(available, key=lambda name: (-available[name], name))
    shown = list(dict.fromkeys(alike + largest))[:10]
    return LstmkitError(
        f"no gettext catalogs for language {language!r} in {locale_dir} (no "
        f"{locale_dir / language / 'LC_MESSAGES'}/*.mo); languages there include "
        f"{', '.join(shown)} ({len(available)} in all): choose one with --gettext LANG")


def gettext_pairs(language: str, locale_dir: str | Path = DEFAULT_LOCALE_DIR,
                  max_words: int = MAX_WORDS) -> list[CatalogPair]:
    """English -> ``language`` pairs from every catalog in ``locale_dir/language/
    LC_MESSAGES``, cleaned by :func:`clean_pair`, one pair per English string, sorted.

    ``language`` is exactly the folder name ("de" does not include "de_CH"). When an
    English string has several translations (contexts, several packages), the most
    frequent one is kept, ties going to the smallest string and its domain to the
    smallest domain name, so the result does not depend on the order files are read.
    A damaged catalog is left out with a warning naming it: one broken system file
    should not stop the corpus, and the user cannot repair it.
    """
    locale_dir = Path(locale_dir)
    if not language or language in (".", "..") or "/" in language or "\\" in language:
        raise LstmkitError(f"--gettext takes a language folder name such as de or pt_BR, "
                           f"got {language!r}")
    if max_words < 1:
        raise LstmkitError(f"{option_name('max_words')} must be at least 1, got {max_words}")
    catalogs = sorted((locale_dir / language / "LC_MESSAGES").glob("*.mo"))
    if not catalogs:
        raise _no_catalogs(language, locale_dir)
    votes: dict[str, Counter[str]] = defaultdict(Counter)
    domains: dict[tuple[str, str], str] = {}
    skipped = []
    for path in catalogs:
        try:
            raw = read_catalog(path)
        except LstmkitError as error:
            skipped.append(path.name)
            logger.warning("%s", error)
            continue
        for pair in raw:
            cleaned = clean_pair(pair.source, pair.target, max_words)
            if cleaned is None:
                continue
            votes[cleaned[0]][cleaned[1]] += 1
            previous = domains.get(cleaned)
            if previous is None or pair.domain < previous:
                domains[cleaned] = pair.domain
    if skipped:
        logger.warning("left out %d damaged catalog(s) of %d for %s: %s", len(skipped),
                       len(catalogs), language, ", ".join(skipped))
    pairs = []
    for source in sorted(votes):
        counts = votes[source]
        target = min(counts, key=lambda text: (-counts[text], text))
        pairs.append(CatalogPair(source, target, domains[source, target]))
    return pairs


def write_pairs_tsv(pairs: Iterable[CatalogPair], path: str | Path,
                    overwrite: bool = False) -> None:
    """Write a ``source<TAB>target`` table with that header, atomically (a killed
    process leaves the old file or the whole new one). The translate task reads it back
    as is. Normalised pairs hold no tab or newline; a pair that does (one built by hand)
    is refused rather than written as a broken row."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise LstmkitError(f"{path} already exists; pass --overwrite to replace it, or "
                           "choose another output folder")
    lines = ["source\ttarget"]
    for pair in pairs:
        if any(character in pair.source + pair.target for character in "\t\n\r"):
            raise LstmkitError(f"the pair {pair.source!r} -> {pair.target!r} holds a tab or "
                               "line break; clean it with clean_pair first")
        lines.append(f"{pair.source}\t{pair.target}")
    atomic_write_text(path, "\n".join(lines) + "\n")


def corpus_summary(pairs: Sequence[CatalogPair]) -> dict[str, int]:
    """Pairs, source words and target words (whitespace-separated, so a Chinese or
    Japanese target counts clauses rather than words)."""
    return {"pairs": len(pairs),
            "source_words": sum(len(pair.source.split()) for pair in pairs),
            "target_words": sum(len(pair.target.split()) for pair in pairs)}
