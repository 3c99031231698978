"""Ingestion: every format, every refusal (naming file, row, column), hostile texts kept as is."""
from __future__ import annotations

import csv
import gzip
import io
import json
import random
import zipfile

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from embedlab.corpus import Skip
from embedlab.errors import InputError
from embedlab.ingest import (DEFAULT_MAX_BYTES, FORMATS, guess_columns, load_corpus, load_corpus_bytes,
                             read_table)


def refused(data: bytes, filename: str, **kwargs) -> InputError:
    with pytest.raises(InputError) as info:
        load_corpus_bytes(data, filename, **kwargs)
    assert filename.rsplit("/", 1)[-1] in str(info.value)      # every error names the file
    return info.value


def csv_bytes(rows: list[list], encoding: str = "utf-8") -> bytes:
    buf = io.StringIO(newline="")
    csv.writer(buf).writerows(rows)
    return buf.getvalue().encode(encoding)


def zip_bytes(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


SIMPLE = [{"id": "a1", "text": "the first document", "label": "pos", "score": 0.5},
          {"id": "a2", "text": "the second one", "label": "neg", "score": 1.5}]


# ---------------------------------------------------------------- formats

def test_api_constants():
    assert DEFAULT_MAX_BYTES == 200 * 1024 * 1024
    assert FORMATS == ("csv", "tsv", "jsonl", "json", "parquet", "txt", "zip")


def test_csv_with_header_picks_columns_and_types():
    data = b"id,text,label,score\na1,the first document,pos,0.5\na2,the second one,neg,1.5\n"
    c = load_corpus_bytes(data, "reviews.csv")
    assert (c.name, c.source) == ("reviews", "reviews.csv")
    assert c.texts == ["the first document", "the second one"]
    assert (c.text_col, c.label_col, c.id_col, c.meta_cols) == ("text", "label", "id", ["score"])
    assert c.doc_ids == ["a1", "a2"] and c.labels == ["pos", "neg"]
    assert c.metas == [{"score": 0.5}, {"score": 1.5}] and c.skipped == []


def test_tsv_and_semicolon_csv():
    tsv = b"text\tlabel\nhello there\tgreet\nsee you, later\tbye\n"
    assert load_corpus_bytes(tsv, "x.TSV").texts == ["hello there", "see you, later"]
    semi = b"text;label\nhello there;greet\nsee you, later;bye\n"
    c = load_corpus_bytes(semi, "x.csv")
    assert c.texts == ["hello there", "see you, later"] and c.labels == ["greet", "bye"]


def test_tsv_with_unbalanced_quotes_reads_literally():
    tsv = b'text\tlabel\n"quoted" then more\tx\nplain\ty\n'
    assert load_corpus_bytes(tsv, "q.tsv").texts == ['"quoted" then more', "plain"]


def test_jsonl_and_json_both_shapes_agree():
    jsonl = "\n".join(json.dumps(r) for r in SIMPLE).encode()
    as_list = json.dumps(SIMPLE).encode()
    as_object = json.dumps({"version": 2, "data": SIMPLE}).encode()
    for data, name in ((jsonl, "d.jsonl"), (as_list, "d.json"), (as_object, "d.JSON"),
                       (jsonl, "lines.json")):
        c = load_corpus_bytes(data, name)
        assert c.texts == ["the first document", "the second one"], name
        assert c.doc_ids == ["a1", "a2"] and c.labels == ["pos", "neg"]
        assert c.metas[0] == {"score": 0.5}


def test_json_nested_values_become_json_text_and_int_labels_strings():
    rows = [{"text": "alpha beta", "intent": 3, "tags": ["x", "y"], "extra": {"k": 1}},
            {"text": "gamma delta", "intent": None}]
    c = load_corpus_bytes(json.dumps(rows).encode(), "n.json")
    assert c.label_col == "intent" and c.labels == ["3", None]
    assert c.metas[0] == {"tags": '["x", "y"]', "extra": '{"k": 1}'}
    assert c.metas[1] == {"tags": None, "extra": None}


def test_parquet_roundtrip():
    buf = io.BytesIO()
    pd.DataFrame(SIMPLE).to_parquet(buf)
    c = load_corpus_bytes(buf.getvalue(), "d.parquet")
    assert c.texts == ["the first document", "the second one"]
    assert (c.doc_ids, c.labels, c.metas[1]) == (["a1", "a2"], ["pos", "neg"], {"score": 1.5})


def test_txt_one_document_a_line_with_skips_and_stable_ids():
    data = b"first line\r\n\r\n   \nfourth line  \nlast"
    c = load_corpus_bytes(data, "notes.txt")
    assert c.texts == ["first line", "fourth line  ", "last"]
    assert c.doc_ids == ["0", "3", "4"]
    assert c.skipped == [Skip(2, "empty text"), Skip(3, "only whitespace")]
    assert c.n_skipped == 2 and c.labels is None


def test_zip_of_txt_files():
    data = zip_bytes({"b/two.txt": b"second doc\n", "a.txt": "caf\u00e9 one".encode(),
                      "__MACOSX/._a.txt": b"\x00\x05junk", ".DS_Store": b"\x00\x00",
                      "b/.hidden.txt": b"hidden", "readme.md": b"not a txt",
                      "empty.txt": b"", "dir/": b""})
    c = load_corpus_bytes(data, "docs.zip")
    assert c.doc_ids == ["a.txt", "b/two.txt"] and c.texts == ["caf\u00e9 one", "second doc"]
    assert c.id_col == "doc_id" and c.metas == [{"folder": None}, {"folder": "b"}]
    assert c.skipped == [Skip(3, "empty text")]


def test_gzipped_csv():
    c = load_corpus_bytes(gzip.compress(b"text\nhello world\n"), "small.csv.gz")
    assert c.texts == ["hello world"] and c.name == "small"


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-16-le", "utf-16-be", "cp1252"])
def test_encodings(encoding):
    bom = {"utf-16-le": b"\xff\xfe", "utf-16-be": b"\xfe\xff"}.get(encoding, b"")
    text = "caf\u00e9 na\u00efve \u2013 \u201cquoted\u201d \u20ac5"
    data = bom + csv_bytes([["text", "label"], [text, "x"], ["plain words", "y"]], encoding)
    c = load_corpus_bytes(data, "enc.csv")
    assert c.text_col == "text"               # no BOM left in the header
    assert c.texts == [text, "plain words"]


def test_read_table_all_rows_and_numbers():
    rows = [["text", "n", "zip"]] + [[f"doc number {i}", str(i), f"0{i}"] for i in range(50)]
    df = read_table(csv_bytes(rows), "t.csv")
    assert len(df) == 50 and list(df.columns) == ["text", "n", "zip"]
    assert str(df["n"].dtype) == "Int64" and df["zip"].iloc[3] == "03"
    assert df.attrs["format"] == "csv" and df.attrs["header"] is True


def test_load_corpus_from_path(tmp_path):
    p = tmp_path / "My Data.jsonl"
    p.write_text("\n".join(json.dumps(r) for r in SIMPLE), encoding="utf-8")
    c = load_corpus(p, name="mine")
    assert (c.name, c.source, len(c.texts)) == ("mine", "My Data.jsonl", 2)
    assert load_corpus(str(p)).name == "My Data"


# ---------------------------------------------------------------- columns

def test_text_column_detection_prefers_long_wordy_columns():
    df = pd.DataFrame({"url": ["https://example.com/a/very/long/path/to/somewhere"] * 2,
                       "id": ["a-very-long-identifier-string-12345678901234567890"] * 2,
                       "title": ["short one", "short two"],
                       "body": ["a longer body of text here", "another longer body text"],
                       "n": [1, 2]})
    assert guess_columns(df).text == "body"
    assert guess_columns(df.drop(columns=["body", "title"])).text == "url"     # never the id, though longer


def test_no_text_column():
    e = refused(b"id,score\n1,0.5\n2,0.75\n", "numbers.csv")
    assert "no text column" in str(e)
    with pytest.raises(InputError, match="no text column"):
        guess_columns(pd.DataFrame({"a": [1, 2], "b": [0.1, 0.2]}))


def test_named_columns_and_meta_selection():
    data = b"ID,Body,Kind,Source,Lang\n7,hello there,a,web,en\n8,general kenobi,b,film,en\n"
    c = load_corpus_bytes(data, "s.csv", text_col="Body", label_col="Source", meta_cols=["Lang"])
    assert (c.text_col, c.label_col, c.id_col) == ("Body", "Source", "ID")
    assert c.labels == ["web", "film"] and c.doc_ids == ["7", "8"]
    assert c.metas == [{"Lang": "en"}, {"Lang": "en"}]
    none = load_corpus_bytes(data, "s.csv", label_col="", id_col="", meta_cols=[])
    assert none.labels is None and none.doc_ids == ["0", "1"] and none.metas == [{}, {}]


def test_missing_named_column_lists_the_columns():
    e = refused(b"text,label\nhello world,x\n", "cols.csv", label_col="category")
    assert e.column == "category"
    assert "cols.csv, column 'category'" in str(e) and "'text', 'label'" in str(e)


def test_headerless_csv_like_ag_news():
    data = (b'"3","Fears for pension","Unions representing workers say they are disappointed."\n'
            b'"4","Race is on","A second team of rocketeers announced a launch date."\n'
            b'"3","Company wins grant","A company founded by a researcher won a grant."\n'
            b'"4","Space race","Another long description of space flight events here."\n'
            b'"3","","   "\n')
    c = load_corpus_bytes(data, "test.csv")
    assert (c.text_col, c.label_col, c.meta_cols) == ("col3", "col1", ["col2"])
    assert c.labels == ["3", "4", "3", "4"] and c.doc_ids == ["0", "1", "2", "3"]
    assert c.texts[0] == "Unions representing workers say they are disappointed."
    assert c.skipped == [Skip(5, "only whitespace")]      # row 5 is the 5th line: no header
    assert read_table(data, "test.csv").attrs["header"] is False


# ---------------------------------------------------------------- texts kept literally

HOSTILE = ["<script>alert(1)</script>", "<img src=x onerror=alert(1)>",
           "[x](javascript:alert(1))", "\u0645\u0631\u062d\u0628\u0627",
           "emoji \U0001f600\U0001f44d\U0001f3fd",
           "a\u200bb", "quote \" and, comma\nand a line break", "  leading and trailing  "]


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
def test_hostile_texts_preserved(fmt):
    if fmt == "csv":
        data = csv_bytes([["text"]] + [[t] for t in HOSTILE])
    elif fmt == "jsonl":
        data = "\n".join(json.dumps({"text": t}, ensure_ascii=False) for t in HOSTILE).encode()
    else:
        buf = io.BytesIO()
        pd.DataFrame({"text": HOSTILE}).to_parquet(buf)
        data = buf.getvalue()
    assert load_corpus_bytes(data, f"h.{fmt}").texts == HOSTILE


def test_one_megabyte_document():
    big = ("word " * 210_000)[:1_048_576]
    data = csv_bytes([["text", "label"], [big, "x"], ["small", "y"]])
    assert load_corpus_bytes(data, "big.csv").texts == [big, "small"]


# ---------------------------------------------------------------- refusals

def test_unterminated_quote_names_the_row():
    data = b'text,label\nfine,a\n"never closed,b\nmore,c\n'
    e = refused(data, "broken.csv")
    assert e.row == 2 and "unterminated" in str(e) and "line 3" in str(e)
    assert str(e).startswith("broken.csv, row 2:")


@pytest.mark.parametrize("data,name", [(b"", "e.csv"), (b"\xef\xbb\xbf\n \n", "e.txt"),
                                       (b"", "e.parquet"), (b"  ", "e.jsonl")])
def test_empty_file(data, name):
    assert "the file is empty" in str(refused(data, name))


def test_random_bytes_refused():
    rng = random.Random(0)
    assert "not a text file" in str(refused(rng.randbytes(4096), "noise.csv"))
    no_nul = bytes(b for b in rng.randbytes(4096) if b)
    assert "not a text file" in str(refused(no_nul, "noise.txt"))


def test_txt_with_nul_bytes_refused():
    e = refused(b"line one\nline\x00two\n", "nul.txt")
    assert "not a text file" in str(e) and "NUL" in str(e) and "line 2" in str(e)
    e = refused("text\nhello\n".encode("utf-16-le"), "no_bom.csv")
    assert "UTF-16 without a byte-order mark" in str(e)


def test_broken_utf8_names_the_line():
    e = refused("text\ncaf\u00e9 ok\n".encode() + b"bad \xff byte\n", "u.csv")
    assert "not valid UTF-8" in str(e) and "line 3" in str(e)


def test_jsonl_broken_line_named():
    lines = [json.dumps({"text": f"doc {i}"}) for i in range(5)]
    lines[2] = '{"text": "doc 2",'
    e = refused("\n".join(lines).encode(), "b.jsonl")
    assert e.row == 3 and "line 3 is not valid JSON" in str(e)
    e = refused(b'{"text": "ok"}\n["a list"]\n', "l.jsonl")
    assert e.row == 2 and "a list" in str(e)


@pytest.mark.parametrize("obj,expect", [
    ({"text": "one object"}, "found an object with keys 'text'"),
    ({"a": [], "b": []}, "lists under 'a', 'b'"),
    ("just a string", "found a string")])
def test_json_wrong_shape(obj, expect):
    e = refused(json.dumps(obj).encode(), "w.json")
    assert "expected a list of objects" in str(e) and expect in str(e)


def test_json_item_not_an_object_names_the_row():
    e = refused(json.dumps([{"text": "fine"}, "oops"]).encode(), "i.json")
    assert e.row == 2 and "the item is a string" in str(e)
    assert "not valid JSON" in str(refused(b'[{"text": "x"', "t.json"))


def test_truncated_zip_and_parquet():
    data = zip_bytes({"a.txt": b"hello " * 100, "b.txt": b"world " * 100})
    e = refused(data[: len(data) // 2], "cut.zip")
    assert "the ZIP archive is damaged or truncated" in str(e)
    buf = io.BytesIO()
    pd.DataFrame(SIMPLE).to_parquet(buf)
    assert "damaged or truncated" in str(refused(buf.getvalue()[:-10], "cut.parquet"))
    assert "not a Parquet file" in str(refused(b"text\nhello\n", "fake.parquet"))
    assert "holds no .txt files" in str(refused(zip_bytes({"a.csv": b"x"}), "n.zip"))


def test_duplicate_ids_listed_with_rows():
    data = b"id,text\n1,aa bb\n2,cc dd\n1,ee ff\n3,gg hh\n1,ii jj\n"
    e = refused(data, "dup.csv")
    assert e.column == "id" and e.row == 3
    assert "duplicate ids: '1' in rows 1, 3, 5" in str(e)
    e = refused(b"id,text\n1,aa bb\n,cc dd\n", "noid.csv")
    assert e.row == 2 and "the id is empty" in str(e)


def test_size_limit(tmp_path):
    data = b"text\n" + b"x y\n" * 1000
    e = refused(data, "big.csv", max_bytes=1024)
    assert "3.9 KB is over the 1 KB limit (set --max-mb" in str(e)
    p = tmp_path / "huge.csv"
    with p.open("wb") as fh:                   # a sparse 250 MB file: refused before it is read
        fh.truncate(250 * 1024 * 1024 + 300 * 1024)
    with pytest.raises(InputError, match=r"huge.csv: 250.3 MB is over the 200 MB limit"):
        load_corpus(p)
    with pytest.raises(InputError, match="no such file"):
        load_corpus(tmp_path / "missing.csv")


def test_all_empty_documents():
    e = refused(b"text,label\n,a\n   ,b\n\"\",c\n", "blank.csv", text_col="text")
    assert str(e) == "blank.csv, column 'text': empty in every row (3 rows): no documents to ingest"
    e = refused(b'{"text": " "}\n{"text": ""}\n', "blank.jsonl")    # never taken as the text
    assert "blank.jsonl, column 'text': empty in every row" in str(e) and e.column == "text"


def test_ragged_row_and_unsupported_type():
    e = refused(b"text,label\nfine,a\ntoo,many,fields\n", "r.csv")
    assert e.row == 2 and "3 fields but the header has 2" in str(e)
    assert "unsupported file type '.xlsx'" in str(refused(b"PKx", "sheet.xlsx"))
    assert "only a header row" in str(refused(b"text,label\n", "h.csv"))


# ---------------------------------------------------------------- round trip

DOC = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
              min_size=1, max_size=40).filter(lambda t: t.strip() != "")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(DOC, min_size=1, max_size=8))
def test_roundtrip_csv_and_jsonl(texts):
    as_csv = csv_bytes([["text"]] + [[t] for t in texts])
    assert load_corpus_bytes(as_csv, "p.csv", text_col="text").texts == texts
    as_jsonl = "\n".join(json.dumps({"text": t}, ensure_ascii=False) for t in texts).encode()
    assert load_corpus_bytes(as_jsonl, "p.jsonl", text_col="text").texts == texts


# ---------------------------------------------------------------- legacy encodings (issue 13)

@pytest.mark.parametrize("text,encoding", [
    ("Привет мир, как дела у тебя сегодня? Это тестовый документ", "cp1251"),
    ("Привет мир\nКак дела у тебя сегодня", "koi8_r"),
    ("你好世界，这是一个测试文档。我们正在测试编码检测。", "gbk"),
    ("こんにちは世界、これはテスト文書です。\nエンコーディングの検出をテストしています。", "shift_jis"),
    ("España es un país hermoso, mañana iré. El niño comió piña", "cp1252"),
    ("Não sei se ele está em São Paulo, coração", "cp1252"),
    ("Le café très bon\nDie Straße ist groß\nEl niño", "cp1252"),
    ("İstanbul'da güzel bir gün, şehir ışıl ışıl", "cp1254"),
    ("Γειά σου κόσμε, αυτό είναι ένα δοκιμαστικό κείμενο", "cp1253"),
    ("Zażółć gęślą jaźń, to jest polski tekst testowy", "cp1250"),
    ("Přes řeku vede most, čeština je krásná", "cp1250"),
    ("مرحبا بالعالم هذا نص تجريبي", "cp1256"),
])
def test_legacy_encoding_detected_exactly(text, encoding):
    data = ("text\n" + "\n".join(f'"{line}"' for line in text.split("\n")) + "\n").encode(encoding)
    assert load_corpus_bytes(data, "legacy.csv").texts == text.split("\n")


def test_western_text_with_an_em_dash_is_not_read_as_baltic():
    """cp1252 and cp1257 both fit two Latin languages here; charset-normalizer's chaos (the em dash) favoured cp1257,
    which stored "crčme" and "déją"."""
    data = "text,label\nCafé crème à Noël,a\nSmörgåsbord — déjà vu,b\n".encode("cp1252")
    assert load_corpus_bytes(data, "mixed.csv").texts == ["Café crème à Noël", "Smörgåsbord — déjà vu"]


@pytest.mark.parametrize("text,encoding,named", [("Привет мир", "cp1251", "cp1251"),
                                                 ("你好世界", "gbk", "gb18030"),
                                                 ("こんにちは", "shift_jis", "cp932")])
def test_ambiguous_legacy_encoding_refused_with_candidates(text, encoding, named):
    data = f"text\n{text}\n".encode(encoding)
    e = refused(data, "short.csv")
    assert "cannot be told for sure" in str(e) and named in str(e) and "--encoding" in str(e)
    assert load_corpus_bytes(data, "short.csv", encoding=encoding).texts == [text]


def test_json_ids_keep_their_literal_text_and_columns_are_not_retyped():
    data = b'{"id": 1234567890123456789, "text": "a b"}\n{"id": null, "text": ""}\n{"id": 1.50, "text": "c d"}\n'
    c = load_corpus_bytes(data, "ids.jsonl", id_col="id")
    assert c.doc_ids == ["1234567890123456789", "1.50"] and c.n_skipped == 1
    assert read_table(data, "ids.jsonl")["id"].dtype == object


def test_excel_for_mac_line_ends_pick_the_delimiter():
    c = load_corpus_bytes(b"text;label\rhello, world;a\rsecond, one;b\r", "mac.csv")
    assert c.texts == ["hello, world", "second, one"] and c.labels == ["a", "b"]
