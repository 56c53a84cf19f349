"""The official `openai` Python client against a running `baton serve` (BatonServerTests starts it).

    python3 openai_client.py BASE_URL MODEL API_KEY basic
    python3 openai_client.py BASE_URL MODEL API_KEY load REQUESTS CONCURRENCY
    python3 openai_client.py BASE_URL MODEL API_KEY abandon
    python3 openai_client.py BASE_URL MODEL API_KEY drain
    python3 openai_client.py BASE_URL MODEL API_KEY image IMAGE_FILE

basic: models, completions and chat completions, whole and streamed (the streamed text must equal
the whole text), usage, finish_reason, the X-Baton-Method header, and the errors the client maps
to exceptions. load: REQUESTS streaming requests, CONCURRENCY at a time, over KEYS distinct
(prompt, seed) pairs whose whole answers are fetched first; every stream must be complete
(finish_reason, usage, [DONE]) and carry exactly its own key's text. abandon: starts a long
stream, prints "streaming" after the first chunk and waits to be killed. drain: prints "streaming"
after the first chunk, then reads the stream to its end (the server is told to shut down meanwhile)
and checks that it finished. image: a chat message with the image as a base64 data: URL part, asked
twice (the second answer must be the first, its visual tokens from Baton's encoder cache, as
`usage.baton` says) and streamed (the same text).
Exits non-zero with a message on the first failed check; prints "openai client: N checks passed" otherwise.
"""
import asyncio
import base64
import sys

import openai

base_url, model, api_key, mode = sys.argv[1:5]
checks = 0


def check(condition, message):
    global checks
    if not condition:
        sys.exit(f"FAILED: {message}")
    checks += 1


def streamed_completion(client, **kwargs):
    text, finish, usage = "", None, None
    for chunk in client.completions.create(stream=True, stream_options={"include_usage": True}, **kwargs):
        if chunk.usage is not None:
            usage = chunk.usage
        for choice in chunk.choices:
            text += choice.text
            finish = choice.finish_reason or finish
    return text, finish, usage


def streamed_chat(client, **kwargs):
    text, finish, usage, roles = "", None, None, []
    for chunk in client.chat.completions.create(stream=True, stream_options={"include_usage": True}, **kwargs):
        if chunk.usage is not None:
            usage = chunk.usage
        for choice in chunk.choices:
            if choice.delta.role:
                roles.append(choice.delta.role)
            text += choice.delta.content or ""
            finish = choice.finish_reason or finish
    return text, finish, usage, roles


def basic():
    client = openai.OpenAI(base_url=base_url, api_key=api_key, max_retries=0)
    check([m.id for m in client.models.list().data] == [model], "models.list names the served model")

    request = dict(model=model, prompt="The capital of France is", max_tokens=12, temperature=0)
    whole = client.completions.create(**request)
    check(whole.object == "text_completion" and len(whole.choices) == 1, "a completion has one choice")
    check(whole.choices[0].finish_reason in ("stop", "length"), "finish_reason is stop or length")
    check(whole.usage.completion_tokens <= 12 and whole.usage.prompt_tokens > 0, "completion usage is within max_tokens")
    check(whole.usage.total_tokens == whole.usage.prompt_tokens + whole.usage.completion_tokens, "total_tokens adds up")
    text, finish, usage = streamed_completion(client, **request)
    check(text == whole.choices[0].text, f"streamed completion {text!r} equals the whole one {whole.choices[0].text!r}")
    check(finish == whole.choices[0].finish_reason and usage == whole.usage, "streamed finish_reason and usage equal the whole ones")

    chat = dict(model=model, messages=[{"role": "system", "content": "Be brief."},
                                       {"role": "user", "content": [{"type": "text", "text": "Name a colour."}]}],
                max_completion_tokens=16, temperature=0.8, top_p=0.9, seed=1234)
    raw = client.chat.completions.with_raw_response.create(**chat)
    check(raw.headers.get("x-baton-method") == "dense", "X-Baton-Method says dense on one device")
    whole = raw.parse()
    check(whole.object == "chat.completion" and whole.choices[0].message.role == "assistant", "a chat completion is the assistant's message")
    text, finish, usage, roles = streamed_chat(client, **chat)
    check(roles == ["assistant"], "the stream names the assistant's role once")
    check(text == whole.choices[0].message.content, f"streamed chat {text!r} equals the whole one {whole.choices[0].message.content!r}")
    check(finish == whole.choices[0].finish_reason and usage == whole.usage, "streamed chat finish_reason and usage equal the whole ones")

    full = client.completions.create(**{**request, "max_tokens": 24}).choices[0].text
    if len(full) > 6:
        stop = full[3:6]
        cut = client.completions.create(**{**request, "max_tokens": 24, "stop": [stop]})
        check(cut.choices[0].text == full[:full.index(stop)] and cut.choices[0].finish_reason == "stop",
              f"stop {stop!r} cuts {full!r} before its first occurrence")
        text, finish, _ = streamed_completion(client, **{**request, "max_tokens": 24, "stop": stop})
        check(text == cut.choices[0].text and finish == "stop", "a streamed stop string cuts the same text")

    for error, kwargs in [(openai.NotFoundError, dict(model="no-such-model")), (openai.BadRequestError, dict(n=2)),
                          (openai.BadRequestError, dict(temperature=7))]:
        try:
            client.completions.create(**{**request, **kwargs})
            check(False, f"{kwargs} raises {error.__name__}")
        except error as e:
            check(e.body is not None and "message" in e.body, f"{kwargs}: the error body has a message")
    if api_key != "none":
        bad = openai.OpenAI(base_url=base_url, api_key="wrong-key", max_retries=0)
        try:
            bad.models.list()
            check(False, "a wrong API key raises AuthenticationError")
        except openai.AuthenticationError:
            check(True, "")


async def load(requests, concurrency):
    keys = 50
    client = openai.AsyncOpenAI(base_url=base_url, api_key=api_key, max_retries=0, timeout=120)

    def body(key):
        return dict(model=model, prompt=f"Request {key}: count the {key * 7 % 13} stars", max_tokens=6,
                    temperature=0.9, seed=key)

    expected = {}
    for key in range(keys):
        whole = await client.completions.create(**body(key))
        expected[key] = (whole.choices[0].text, whole.choices[0].finish_reason, whole.usage.completion_tokens)
    distinct = len({text for text, _, _ in expected.values()})
    check(distinct >= keys * 0.8, f"the {keys} keys give mostly distinct texts ({distinct}), so a mix-up would show")

    semaphore = asyncio.Semaphore(concurrency)
    done = []

    async def one(index):
        key = index % keys
        async with semaphore:
            text, finish, usage, ids = "", None, None, set()
            stream = await client.completions.create(stream=True, stream_options={"include_usage": True}, **body(key))
            async for chunk in stream:
                ids.add(chunk.id)
                if chunk.usage is not None:
                    usage = chunk.usage
                for choice in chunk.choices:
                    text += choice.text
                    finish = choice.finish_reason or finish
            got = (text, finish, usage.completion_tokens if usage else None)
            if got != expected[key] or len(ids) != 1:
                sys.exit(f"FAILED: request {index} (key {key}) got {got} in {len(ids)} ids, expected {expected[key]}")
            done.append(index)

    await asyncio.gather(*(one(i) for i in range(requests)))
    check(sorted(done) == list(range(requests)), f"all {requests} streams completed with their own text")


async def abandon():
    client = openai.AsyncOpenAI(base_url=base_url, api_key=api_key, max_retries=0)
    stream = await client.completions.create(model=model, prompt="Tell a long story", max_tokens=2000, temperature=1, seed=5,
                                             stream=True, extra_body={"baton": {"ignore_eos": True}})
    async for _ in stream:
        print("streaming", flush=True)
        await asyncio.sleep(3600)


def drain():
    client = openai.OpenAI(base_url=base_url, api_key=api_key, max_retries=0)
    stream = client.completions.create(model=model, prompt="Tell a story", max_tokens=300, temperature=1, seed=9,
                                       stream=True, stream_options={"include_usage": True})
    finish, usage = None, None
    for index, chunk in enumerate(stream):
        if index == 0:
            print("streaming", flush=True)
        usage = chunk.usage or usage
        for choice in chunk.choices:
            finish = choice.finish_reason or finish
    check(finish in ("stop", "length") and usage is not None, "the stream in flight at shutdown finished")


def image(path):
    client = openai.OpenAI(base_url=base_url, api_key=api_key, max_retries=0)
    with open(path, "rb") as file:
        url = "data:image/png;base64," + base64.b64encode(file.read()).decode()
    # min_pixels/max_pixels: Baton's per-part sizing (one 56x56 image keeps the tiny model fast).
    part = {"type": "image_url", "image_url": {"url": url, "min_pixels": 3136, "max_pixels": 3136}}
    request = dict(model=model, max_tokens=6, temperature=0,
                   messages=[{"role": "user", "content": [part, {"type": "text", "text": "Describe the picture."}]}])
    first, second = client.chat.completions.create(**request), client.chat.completions.create(**request)
    visual = (first.usage.model_extra or {}).get("baton") or {}
    check(visual.get("visual_tokens", 0) > 0 and visual.get("cached_visual_tokens") == 0,
          f"the first answer encoded the image: usage.baton {visual}")
    cached = (second.usage.model_extra or {}).get("baton") or {}
    check(cached.get("cached_visual_tokens") == visual["visual_tokens"], f"the second took it from the cache: {cached}")
    text = first.choices[0].message.content
    check(second.choices[0].message.content == text, "the cached answer is the first one")
    streamed, _, _, _ = streamed_chat(client, **request)
    check(streamed == text, f"the streamed answer {streamed!r} is the whole one {text!r}")
    try:
        client.chat.completions.create(**{**request, "messages": [{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}]}]})
        check(False, "an http image URL raises BadRequestError")
    except openai.BadRequestError as e:
        check("network" in e.body["message"], f"the error says nothing is fetched: {e.body}")


if mode == "basic":
    basic()
elif mode == "load":
    asyncio.run(load(int(sys.argv[5]), int(sys.argv[6])))
elif mode == "drain":
    drain()
elif mode == "abandon":
    asyncio.run(abandon())
elif mode == "image":
    image(sys.argv[5])
else:
    sys.exit(f"unknown mode {mode}")
print(f"openai client: {checks} checks passed")
