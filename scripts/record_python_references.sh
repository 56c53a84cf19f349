#!/bin/sh
# Records what Hugging Face `tokenizers` and `jinja2` answer to the tokenizer cross-checks and
# chat-template tests into Tests/Fixtures/python-references.json, so `swift test` checks the
# same answers on machines without those packages. Run from the repository root after changing
# a tokenizer fixture, the test texts or a template; needs pip access to PyPI. The default
# model's tokenizer is recorded too when it is fetched (~/.cache/baton/models/...).
set -eu
tools="${TMPDIR:-/tmp}/baton-python-references"
python3 -m pip install -q --disable-pip-version-check --target "$tools" tokenizers jinja2
PYTHONPATH="$tools${PYTHONPATH:+:$PYTHONPATH}" BATON_RECORD_PYTHON_REFERENCES=1 \
    swift test --filter 'TokenizerCrossCheckTests|TokenizerChatTemplateTests'
