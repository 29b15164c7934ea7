"""The gettext corpus: .mo catalogs -> cleaned, de-duplicated English -> X pairs -> splits.

Catalogs are written here by a small .mo writer, so the tests need nothing installed;
one test reads the machine's German catalogs when it has them.
"""

from __future__ import annotations

import struct
import time
from pathlib import Path

import pytest

from lstmkit.data.gettext_catalogs import (
    CatalogPair,
    clean_pair,
    corpus_summary,
    gettext_pairs,
    read_catalog,
    write_pairs_tsv,
)
from lstmkit.data.parallel_text import source_part
from lstmkit.errors import LstmkitError

UTF8_HEADER = "Content-Type: text/plain; charset=UTF-8\n"
GERMAN_PLURALS = "Plural-Forms: nplurals=2; plural=(n != 1);\n"
RUSSIAN_PLURALS = ("Plural-Forms: nplurals=3; plural=(n%10==1 && n%100!=11 ? 0 : n%10>=2 && "
                   "n%10<=4 && (n%100<10 || n%100>=20) ? 1 : 2);\n")


def write_mo(path: Path, messages: list[tuple[str, str]], header: str | bytes = UTF8_HEADER,
             encoding: str = "utf-8") -> Path:
    """A little-endian .mo file: magic, revision 0, N, the offsets of the original and
    translation tables, no hash table, then the strings (NUL-terminated), sorted by
    msgid. Context: "ctx\\x04msgid"; plural: "msgid\\0msgid_plural" -> "form0\\0form1"."""
    header_bytes = header.encode(encoding) if isinstance(header, str) else header
    entries = sorted([(b"", header_bytes)] + [(original.encode(encoding),
                                                 translation.encode(encoding))
                                                for original, translation in messages])
    count = len(entries)
    originals_at, translations_at = 28, 28 + 8 * count
    strings_at = 28 + 16 * count
    tables, blob = [b"", b""], b""
    for column in (0, 1):
        for entry in entries:
            text = entry[column]
            tables[column] += struct.pack("<II", len(text), strings_at + len(blob))
            blob += text + b"\x00"
    data = struct.pack("<7I", 0x950412DE, 0, count, originals_at, translations_at, 0, 0)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data + tables[0] + tables[1] + blob)
    return path


def sources_to_targets(pairs: list[CatalogPair]) -> dict[str, str]:
    return {pair.source: pair.target for pair in pairs}


# ---------------------------------------------------------------------- read_catalog

def test_header_dropped_context_stripped_domain_is_stem(tmp_path):
    path = write_mo(tmp_path / "gtk20.mo", [("menu\x04Open", "Öffnen"), ("Save", "Speichern")])
    pairs = read_catalog(path)
    assert sorted(pairs, key=lambda pair: pair.source) == [
        CatalogPair("Open", "Öffnen", "gtk20"), CatalogPair("Save", "Speichern", "gtk20")]


def test_plural_entry_gives_singular_and_plural_pairs(tmp_path):
    path = write_mo(tmp_path / "files.mo",
                    [("%d file\x00%d files", "%d Datei\x00%d Dateien")],
                    header=UTF8_HEADER + GERMAN_PLURALS)
    assert sources_to_targets(read_catalog(path)) == {"%d file": "%d Datei",
                                                      "%d files": "%d Dateien"}


def test_plural_takes_the_form_most_plurals_use(tmp_path):
    # Russian: form 0 for 1, 21, ...; form 1 for 2-4; form 2 for 5-20 and most others
    russian = write_mo(tmp_path / "ru.mo",
                       [("ctx\x04%d file\x00%d files", "%d файл\x00%d файла\x00%d файлов")],
                       header=UTF8_HEADER + RUSSIAN_PLURALS)
    assert sources_to_targets(read_catalog(russian)) == {"%d file": "%d файл",
                                                         "%d files": "%d файлов"}
    japanese = write_mo(tmp_path / "ja.mo", [("%d file\x00%d files", "%d 個のファイル")],
                        header=UTF8_HEADER + "Plural-Forms: nplurals=1; plural=0;\n")
    assert sources_to_targets(read_catalog(japanese)) == {"%d file": "%d 個のファイル",
                                                          "%d files": "%d 個のファイル"}


def test_legacy_charset_and_malformed_plural_header_are_read(tmp_path):
    # the stdlib alone fails on both: it decodes header lines as UTF-8 and trusts Plural-Forms
    header = ("Last-Translator: Ralf Bächle\nContent-Type: text/plain; charset=ISO-8859-1\n"
              "Plural-Forms: 2\n")
    path = write_mo(tmp_path / "net-tools.mo",
                    [("Size", "Größe"), ("%d byte\x00%d bytes", "%d Byte\x00%d Bytes")],
                    header=header, encoding="latin-1")
    assert sources_to_targets(read_catalog(path)) == {
        "Size": "Größe", "%d byte": "%d Byte", "%d bytes": "%d Bytes"}


@pytest.mark.parametrize("damage", ["truncated", "magic", "offset", "charset", "empty"])
def test_damaged_catalog_names_the_file(tmp_path, damage):
    path = write_mo(tmp_path / "broken.mo", [("Open", "Öffnen"), ("Save", "Speichern")])
    data = bytearray(path.read_bytes())
    if damage == "truncated":
        data = data[:40]
    elif damage == "magic":
        data[:4] = b"\x00\x01\x02\x03"
    elif damage == "offset":
        data[28 + 8 + 4:28 + 8 + 8] = struct.pack("<I", 10 ** 6)  # second msgid's offset
    elif damage == "charset":
        path = write_mo(tmp_path / "broken.mo", [("Open", "Öffnen")],
                        header="Content-Type: text/plain; charset=NO-SUCH-CHARSET\n")
        data = bytearray(path.read_bytes())
    else:
        data = bytearray()
    path.write_bytes(bytes(data))
    with pytest.raises(LstmkitError, match="broken.mo"):
        read_catalog(path)


def test_missing_catalog_is_a_user_error(tmp_path):
    with pytest.raises(LstmkitError, match="does not exist"):
        read_catalog(tmp_path / "nothing.mo")


# ------------------------------------------------------------------------ clean_pair

@pytest.mark.parametrize("source, target, expected", [
    # accelerators, removed on both sides together
    ("_File", "_Datei", ("File", "Datei")),
    ("Select _All", "A_lles markieren", ("Select All", "Alles markieren")),
    ("Cu_t", "_Ausschneiden", ("Cut", "Ausschneiden")),
    ("&Open", "Ö&ffnen", ("Open", "Öffnen")),
    ("_Open", "打开(_O)", ("Open", "打开")),
    ("_Save As…", "另存为(_A)…", ("Save As…", "另存为…")),
    ("&Quit", "終了 (&Q)", ("Quit", "終了")),
    ("Add APT repository", "Paketdepot _hinzufügen", ("Add APT repository",
                                                      "Paketdepot hinzufügen")),
    # not accelerators
    ("Set LC_COLLATE", "LC_COLLATE setzen", ("Set LC_COLLATE", "LC_COLLATE setzen")),
    ("_open_osfhandle failed", "_open_osfhandle fehlgeschlagen",
     ("_open_osfhandle failed", "_open_osfhandle fehlgeschlagen")),
    ("Bad item passed to pam_*_item()", "Ungültiges Element an pam_*_item()",
     ("Bad item passed to pam_*_item()", "Ungültiges Element an pam_*_item()")),
    ("Cats & dogs", "Katzen & Hunde", ("Cats & dogs", "Katzen & Hunde")),
    ("if x && y", "wenn x && y", ("if x && y", "wenn x && y")),
    ("AT&T syntax", "AT&T-Syntax", ("AT&T syntax", "AT&T-Syntax")),
    ("The &lt;key&gt;", "Die &lt;Taste&gt;", ("The &lt;key&gt;", "Die &lt;Taste&gt;")),
    ("remote_schema", "fernes_Schema", ("remote_schema", "fernes_Schema")),
    # whitespace
    ("  Line one\n\tline   two\n", "Zeile eins\r\nZeile\u00a0zwei ",
     ("Line one line two", "Zeile eins Zeile zwei")),
    # placeholders that agree as multisets, however written
    ("%s of %d", "%2$d von %1$s", ("%s of %d", "%2$d von %1$s")),
    ("byte 0x%02X", "Byte 0x%02x", ("byte 0x%02X", "Byte 0x%02x")),
    ("%'d items", "%d Elemente", ("%'d items", "%d Elemente")),
    ("Hello {name}", "Hallo {name}", ("Hello {name}", "Hallo {name}")),
    ("50% done", "50 % erledigt", ("50% done", "50 % erledigt")),
    # short identical pairs are names and terms: kept
    ("Bluetooth", "Bluetooth", ("Bluetooth", "Bluetooth")),
    ("La Rioja", "La Rioja", ("La Rioja", "La Rioja")),
])
def test_clean_pair_normalises(source, target, expected):
    assert clean_pair(source, target) == expected


@pytest.mark.parametrize("source, target", [
    ("", "leer"), ("empty", ""), ("  \n", "x"), ("_", "_"),
    ("%s", "%s"), ("%d: %s", "%d: %s"), ("%1$s/%2$s", "%2$s/%1$s"), ("---", "---"),
    ("https://example.org/help", "https://example.org/hilfe"), ("42", "42"),
    ("%H:%M", "%H:%M"), ("“", "„"),
    ("%s files", "%d Dateien"), ("%s of %s", "%s von"), ("Copied", "%s kopiert"),
    ("{count} files", "{anzahl} Dateien"),
    ("Read the manual first", "Read the manual first"),
])
def test_clean_pair_drops(source, target):
    assert clean_pair(source, target) is None


def test_clean_pair_drops_long_entries():
    licence = " ".join(["word"] * 81)
    assert clean_pair(licence, "Text") is None
    assert clean_pair("Text", licence) is None
    assert clean_pair(" ".join(["word"] * 80), "Text") is not None
    assert clean_pair("one two three", "eins zwei drei", max_words=2) is None


# --------------------------------------------------------------------- gettext_pairs

def make_locale(root: Path, reverse_names: bool = False) -> Path:
    """Two German catalogs that disagree, one Swiss German that must not be read."""
    first, second = ("zeta", "alpha") if reverse_names else ("alpha", "zeta")
    folder = root / "de" / "LC_MESSAGES"
    write_mo(folder / f"{first}.mo", [
        ("Open", "Öffnen"), ("Close", "Schließen"), ("_Print", "_Drucken"), ("%s", "%s"),
        ("%s files", "%d Dateien"), ("Name", "Name")])
    write_mo(folder / f"{second}.mo", [
        ("Open", "Aufmachen"), ("file menu\x04Open", "Öffnen"), ("Close", "Zumachen"),
        ("Print", "Drucken"), ("Quit\n", "Beenden")])
    write_mo(root / "de_CH" / "LC_MESSAGES" / "alpha.mo", [("Close", "Schliessen")])
    return root


def test_gettext_pairs_cleans_and_keeps_the_most_frequent_translation(tmp_path):
    pairs = gettext_pairs("de", make_locale(tmp_path))
    assert pairs == [
        CatalogPair("Close", "Schließen", "alpha"),  # a tie: the smaller string wins
        CatalogPair("Name", "Name", "alpha"),
        CatalogPair("Open", "Öffnen", "alpha"),  # 2 votes (one with a context) against 1
        CatalogPair("Print", "Drucken", "alpha"),  # "_Print" and "Print" agree
        CatalogPair("Quit", "Beenden", "zeta"),
    ]


def test_gettext_pairs_does_not_depend_on_file_names_or_order(tmp_path):
    one = gettext_pairs("de", make_locale(tmp_path / "one"))
    other = gettext_pairs("de", make_locale(tmp_path / "other", reverse_names=True))
    assert [(p.source, p.target) for p in one] == [(p.source, p.target) for p in other]


def test_gettext_pairs_skips_a_damaged_catalog_with_a_warning(tmp_path, caplog):
    root = make_locale(tmp_path)
    (root / "de" / "LC_MESSAGES" / "broken.mo").write_bytes(b"not a catalog")
    pairs = gettext_pairs("de", root)
    assert len(pairs) == 5
    assert "broken.mo" in caplog.text


def test_unknown_language_lists_the_ones_there(tmp_path):
    root = make_locale(tmp_path)
    with pytest.raises(LstmkitError, match="--gettext") as caught:
        gettext_pairs("xx", root)
    assert "de" in str(caught.value) and "de_CH" in str(caught.value)
    with pytest.raises(LstmkitError, match="--gettext"):
        gettext_pairs("../de", root)
    with pytest.raises(LstmkitError, match="no gettext catalogs"):
        gettext_pairs("de", tmp_path / "empty")


# -------------------------------------------------------------------- splits, output

def many_pairs(count: int, language: str) -> list[CatalogPair]:
    return [CatalogPair(f"Message number {n}", f"{language} {n}", "test") for n in range(count)]


def test_split_is_the_same_on_every_machine_and_for_every_language():
    # SHA-256 of the lower-cased English: these parts must never change
    sources = [f"Message number {n}" for n in range(40)]
    parts = {n: source_part(s, 0.1, 0.1) for n, s in enumerate(sources)}
    assert [n for n, part in parts.items() if part == "test"] == [11, 24, 25, 26, 35]
    assert [n for n, part in parts.items() if part == "validation"] == [1, 3, 4, 17, 21, 22]
    assert all(source_part(s.upper(), 0.1, 0.1) == parts[n] for n, s in enumerate(sources))


def test_write_pairs_tsv_refuses_to_overwrite(tmp_path):
    path = tmp_path / "out" / "train.tsv"
    pairs = [CatalogPair("Open", "Öffnen", "gtk20"), CatalogPair("Save", "Speichern", "gtk20")]
    write_pairs_tsv(pairs, path)
    assert path.read_text(encoding="utf-8") == "source\ttarget\nOpen\tÖffnen\nSave\tSpeichern\n"
    with pytest.raises(LstmkitError, match="--overwrite"):
        write_pairs_tsv(pairs[:1], path)
    assert path.read_text(encoding="utf-8").count("\n") == 3  # untouched
    write_pairs_tsv(pairs[:1], path, overwrite=True)
    assert path.read_text(encoding="utf-8") == "source\ttarget\nOpen\tÖffnen\n"
    with pytest.raises(LstmkitError, match="tab"):
        write_pairs_tsv([CatalogPair("a\tb", "c", "x")], tmp_path / "bad.tsv")
    assert not (tmp_path / "bad.tsv").exists()
    assert [p.name for p in path.parent.iterdir()] == ["train.tsv"]  # no temporary left


def test_corpus_summary_counts_pairs_and_words():
    pairs = [CatalogPair("Open the file", "Datei öffnen", "a"), CatalogPair("Save", "Speichern",
                                                                           "a")]
    assert corpus_summary(pairs) == {"pairs": 2, "source_words": 4, "target_words": 3}


# ------------------------------------------------------------------ the real catalogs

def test_real_german_catalogs():
    folder = Path("/usr/share/locale/de/LC_MESSAGES")
    if not any(folder.glob("*.mo")):
        pytest.skip(f"no German gettext catalogs on this machine ({folder}/*.mo)")
    started = time.perf_counter()
    pairs = gettext_pairs("de")
    seconds = time.perf_counter() - started
    print(f"gettext de: {len(pairs)} pairs in {seconds:.2f} s")
    assert len(pairs) > 10_000
    assert len({pair.source for pair in pairs}) == len(pairs)
    assert [pair.source for pair in pairs] == sorted(pair.source for pair in pairs)
    assert all("\t" not in pair.source + pair.target for pair in pairs)


def test_corpus_command_writes_the_table_the_translate_task_reads(tmp_path, capsys):
    from lstmkit.cli import main
    from lstmkit.data.parallel_text import read_parallel

    locale = tmp_path / "locale"
    write_mo(locale / "de" / "LC_MESSAGES" / "demo.mo",
             [("Open the file", "Datei öffnen"), ("_Save", "_Speichern"), ("%s", "%s")])
    out = tmp_path / "pairs.tsv"
    arguments = ["translate", "corpus", "--gettext", "de", "--locale-dir", str(locale),
                 "--output", str(out)]
    assert main(arguments) == 0
    assert "wrote 2 English -> de pairs" in capsys.readouterr().out
    text = read_parallel(out)
    assert sorted(zip(text.sources, text.targets)) == [("Open the file", "Datei öffnen"),
                                                       ("Save", "Speichern")]
    assert main(arguments) == 2  # an existing table is kept
    assert "--overwrite" in capsys.readouterr().err
    assert main(["translate", "corpus", "--gettext", "xx", "--locale-dir", str(locale),
                 "--output", str(tmp_path / "none.tsv")]) == 2
    assert "--gettext" in capsys.readouterr().err and not (tmp_path / "none.tsv").exists()
