#!/usr/bin/env python3
"""The original system's model-service as a benchmark peer: Flask + Keras `model.predict`, the
REMLA char-CNN (Embedding 50 → Conv1D 128 × {3,7,5,3,5,3,3}, tanh, MaxPool(3) after the 1st, 4th,
6th and 7th, Dropout 0.2, Dense sigmoid), URLs cut or padded to 200 characters. The weights are
random: the cost of a request does not depend on them.

    serve.py --port 5001        # POST /predict {"url": "..."} -> {"label", "score"}

Installed and started by `benchmarks/load.py --peer` in its own virtualenv (tensorflow-cpu, flask).
"""

import argparse
import os
import string

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
from flask import Flask, jsonify, request  # noqa: E402
from tensorflow import keras  # noqa: E402

SEQUENCE = 200
CHARS = {c: i + 1 for i, c in enumerate(string.printable)}  # 0 = padding / unknown


def build() -> keras.Model:
    layers = keras.layers
    x = inputs = keras.Input(shape=(SEQUENCE,), dtype="int32")
    x = layers.Embedding(len(CHARS) + 1, 50)(x)
    for i, (kernel, pool) in enumerate([(3, True), (7, False), (5, False), (3, True), (5, False), (3, True), (3, True)]):
        x = layers.Conv1D(128, kernel, activation="tanh", padding="valid" if i == 0 else "same")(x)
        if pool:
            x = layers.MaxPooling1D(3)(x)
        x = layers.Dropout(0.2)(x)
    x = layers.Flatten()(x)
    outputs = layers.Dense(1, activation="sigmoid")(x)
    return keras.Model(inputs, outputs)


def encode(url: str) -> np.ndarray:
    ids = [CHARS.get(c, 0) for c in url[-SEQUENCE:]]
    return np.array([[0] * (SEQUENCE - len(ids)) + ids], dtype="int32")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=5001)
    args = ap.parse_args()
    model = build()
    app = Flask(__name__)

    @app.post("/predict")
    def predict():
        body = request.get_json(silent=True) or {}
        url = body.get("url")
        if not isinstance(url, str) or not url:
            return jsonify(error="expected {\"url\": \"...\"}"), 400
        score = float(model.predict(encode(url), verbose=0)[0][0])
        return jsonify(label="phishing" if score >= 0.5 else "legitimate", score=score)

    @app.get("/health")
    def health():
        return jsonify(status="ok")

    app.run(host="127.0.0.1", port=args.port, threaded=True)


if __name__ == "__main__":
    main()
