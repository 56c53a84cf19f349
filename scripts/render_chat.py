#!/usr/bin/env python3
"""Render chat templates with Jinja the way transformers' apply_chat_template does, for Baton's
chat-template cross-check test.

Usage: python3 scripts/render_chat.py REQUEST.json > RESPONSE.json
REQUEST: {"template": str, "bos_token": str, "eos_token": str,
          "conversations": [{"messages": [{"role", "content"}], "add_generation_prompt": bool}]}
RESPONSE: [str] (one rendering per conversation). strftime_now renders 26 Jul 2024, so the output
does not depend on the day the test runs. Needs only jinja2.
"""
import json
import sys
from datetime import datetime

import jinja2
from jinja2.ext import loopcontrols
from jinja2.sandbox import ImmutableSandboxedEnvironment


def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    # transformers' replacement for Jinja's HTML-escaping tojson
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def raise_exception(message):
    raise jinja2.exceptions.TemplateError(message)


request = json.load(open(sys.argv[1], encoding="utf-8"))
env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols])
env.filters["tojson"] = tojson
env.globals["raise_exception"] = raise_exception
env.globals["strftime_now"] = lambda fmt: datetime(2024, 7, 26).strftime(fmt)
template = env.from_string(request["template"])
json.dump([
    template.render(messages=c["messages"], add_generation_prompt=c["add_generation_prompt"],
                    bos_token=request["bos_token"], eos_token=request.get("eos_token", ""))
    for c in request["conversations"]
], sys.stdout, ensure_ascii=True)
