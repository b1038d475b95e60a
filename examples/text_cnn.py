"""A Kim (2014)-style CNN for sentence sentiment, from raw strings, on Rotten Tomatoes review snippets.

raw strings -> TextVectorization -> Embedding(128) -> Conv1D widths 3, 4 and 5 (100 filters each, relu)
-> GlobalMaxPooling1D each -> Concatenate -> Dropout(0.5) -> Dense(1, sigmoid); Adam, binary
cross-entropy. The split holds out whole movies (convx.datasets.rotten_tomatoes).

The same code runs on TF-Keras: ``--backend keras`` only swaps ``import convx as keras`` for
``import keras``. Run it on both to compare::

    PYTHONPATH=src python examples/text_cnn.py --seeds 0,1,2,3,4
    PYTHONPATH=src python examples/text_cnn.py --seeds 0,1,2,3,4 --backend keras
"""

import argparse
import time

import numpy as np

from convx.datasets import rotten_tomatoes

MAX_TOKENS = 20000
SEQUENCE_LENGTH = 56  # the longest snippet has 53 words
EMBEDDING = 128
WIDTHS = (3, 4, 5)
FILTERS = 100


def build_model(keras, x_train):
    vectorizer = keras.layers.TextVectorization(max_tokens=MAX_TOKENS, output_sequence_length=SEQUENCE_LENGTH)
    vectorizer.adapt(x_train)
    inputs = keras.Input(shape=(1,), dtype="string")
    embedded = keras.layers.Embedding(vectorizer.vocabulary_size(), EMBEDDING)(vectorizer(inputs))
    branches = [keras.layers.GlobalMaxPooling1D()(keras.layers.Conv1D(FILTERS, width, activation="relu")(embedded))
                for width in WIDTHS]
    features = keras.layers.Dropout(0.5)(keras.layers.Concatenate()(branches))
    model = keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid")(features))
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    return model


def run(keras, seed, epochs, batch_size, split_seed):
    (x_train, y_train), (x_test, y_test) = rotten_tomatoes.load_data(test_split=0.2, seed=split_seed)
    keras.utils.set_random_seed(seed)
    model = build_model(keras, x_train)
    start = time.perf_counter()
    model.fit(x_train, y_train, batch_size=batch_size, epochs=epochs, verbose=0)
    seconds = time.perf_counter() - start
    _, accuracy = model.evaluate(x_test, y_test, batch_size=512, verbose=0)
    return float(accuracy), seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=("convx", "keras"), default="convx")
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated initialisation seeds")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=50)
    parser.add_argument("--split-seed", type=int, default=113, help="seed of the movie split (fixed across runs)")
    args = parser.parse_args()
    if args.backend == "keras":
        import keras
    else:
        import convx as keras
    accuracies = []
    for seed in (int(s) for s in args.seeds.split(",")):
        accuracy, seconds = run(keras, seed, args.epochs, args.batch_size, args.split_seed)
        accuracies.append(accuracy)
        print(f"{args.backend} seed {seed}: test accuracy {accuracy:.4f} ({seconds:.1f} s training)", flush=True)
    print(f"{args.backend}: mean test accuracy {np.mean(accuracies):.4f} (std {np.std(accuracies):.4f}) "
          f"over {len(accuracies)} seeds")


if __name__ == "__main__":
    main()
