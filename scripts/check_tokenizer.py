#!/usr/bin/env python3
"""Print Hugging Face `tokenizers` ids for a text file, as JSON, for cross-checking Baton's tokenizer.

Usage:
    python3 scripts/check_tokenizer.py TOKENIZER_JSON TEXT_FILE [--lines] [--no-special]

By default the whole file (read as UTF-8, newlines kept exactly, no trailing-newline stripping)
is one text. With --lines, the file is split on "\n" only (one trailing "\r" is dropped from each
line, a final empty line after the last "\n" is ignored) and each line is encoded separately.
Prints one JSON object to stdout:

    {"tokenizer": "<path>", "tokenizers_version": "0.23.2", "add_special_tokens": true,
     "items": [{"text": "...", "ids": [..], "decoded": "..."}, ...]}

add_special_tokens is true unless --no-special is given (e.g. Llama-3 then gets its BOS).
Requires only `pip install tokenizers`.
"""

import json
import sys

import tokenizers
from tokenizers import Tokenizer


def main(argv):
    args = [a for a in argv[1:] if not a.startswith("--")]
    flags = {a for a in argv[1:] if a.startswith("--")}
    unknown = flags - {"--lines", "--no-special"}
    if len(args) != 2 or unknown:
        sys.stderr.write(__doc__)
        return 2
    tok = Tokenizer.from_file(args[0])
    with open(args[1], "rb") as f:
        data = f.read().decode("utf-8")
    if "--lines" in flags:
        texts = data.split("\n")
        if texts and texts[-1] == "":
            texts.pop()
        texts = [t[:-1] if t.endswith("\r") else t for t in texts]
    else:
        texts = [data]
    add_special = "--no-special" not in flags
    items = []
    for text in texts:
        ids = tok.encode(text, add_special_tokens=add_special).ids
        items.append({"text": text, "ids": ids, "decoded": tok.decode(ids, skip_special_tokens=False)})
    json.dump(
        {
            "tokenizer": args[0],
            "tokenizers_version": tokenizers.__version__,
            "add_special_tokens": add_special,
            "items": items,
        },
        sys.stdout,
        ensure_ascii=False,
    )
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
