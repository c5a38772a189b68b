"""Regenerates encode.json with the original Keras preprocessing (keras_preprocessing 1.1.2,
the code tf.keras' Tokenizer and pad_sequences came from).

    pip install keras-preprocessing==1.1.2 "numpy<2" && python3 generate.py
"""
import json
import pathlib

from keras_preprocessing.sequence import pad_sequences
from keras_preprocessing.text import Tokenizer

here = pathlib.Path(__file__).parent
corpus = here.joinpath("corpus.txt").read_text(encoding="utf-8").splitlines()
cases = {
    "short_url_is_pre_padded": "http://example.com",
    "uppercase_is_lowercased": "HTTPS://WWW.EXAMPLE.COM/LOGIN",
    "unseen_characters_are_oov": "http://jqv.cz/~x",
    "non_ascii_characters": "https://münchen.de/straße/ΣΟΦΟΣ/ĞİŞ",
    "empty_string_is_all_padding": "",
    "exactly_200_characters": "http://a.com/" + "p" * 187,
    "201_characters_drop_the_first": "X" + "http://a.com/" + "p" * 187,
    "long_url_keeps_its_last_200_characters": "http://phish.tk/" + "".join(
        "abcdefghijklmnopqrstuvwxyz0123456789/?=&"[i * 7 % 40] for i in range(10_000 - 17)
    ) + "Z",
}
tok = Tokenizer(lower=True, char_level=True, oov_token="-n-")
tok.fit_on_texts(corpus)
vocabulary = [w for w, _ in sorted(tok.word_index.items(), key=lambda kv: kv[1])]
seqs = pad_sequences(tok.texts_to_sequences(list(cases.values())), maxlen=200)
out = {
    "generator": "keras_preprocessing 1.1.2: Tokenizer(lower=True, char_level=True, oov_token='-n-'), pad_sequences(maxlen=200)",
    "vocabulary": vocabulary,
    "cases": [
        {"name": name, "text": text, "ids": [int(i) for i in seq]}
        for (name, text), seq in zip(cases.items(), seqs)
    ],
}
here.joinpath("encode.json").write_text(json.dumps(out, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
