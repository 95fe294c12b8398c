#!/usr/bin/env python3
"""Helpers for bench/peer/run.sh: the llama.cpp side of the dsvl2 peer comparison.

Subcommands
  convert   dsvl2 checkpoint folder -> llama.cpp GGUF of its language model (BF16),
            written with llama.cpp's own gguf-py (imported from --llama-dir).
  kl-ids    a llama-perplexity --kl-divergence-base file -> one JSON id list per
            chunk, exactly the ids llama.cpp evaluated (first id -> BOS).
  kl-trace  KL of `dsvl2 trace` logits on those ids against the base file's
            llama.cpp log-probabilities, computed as llama-perplexity does.
  table     every raw result of a run -> one table (stdout, table.md, table.json).

Only numpy and the standard library are needed besides gguf-py.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import struct
import sys
from pathlib import Path

try:
    import numpy as np
except ImportError:  # the run script checks this first; this is for direct use
    sys.exit("peer.py: numpy is missing: apt-get install -y python3-numpy")


def die(msg: str) -> None:
    sys.exit(f"peer.py: {msg}")


# ---------------------------------------------------------------------------
# The checkpoint: config.json (language_config) and BF16 safetensors shards.

# dsvl2's LanguageConfig defaults (src/io/model_config.h), used for keys a
# config.json omits, as dsvl2 does.
LANGUAGE_DEFAULTS = {
    "vocab_size": 102400, "hidden_size": 4096, "intermediate_size": 11008, "moe_intermediate_size": 1407,
    "num_hidden_layers": 30, "num_attention_heads": 32, "num_key_value_heads": 32, "n_shared_experts": 0,
    "n_routed_experts": 0, "routed_scaling_factor": 1.0, "kv_lora_rank": 512, "q_lora_rank": 1536,
    "qk_rope_head_dim": 64, "v_head_dim": 128, "qk_nope_head_dim": 128, "topk_method": "greedy", "n_group": 1,
    "topk_group": 1, "num_experts_per_tok": 0, "moe_layer_freq": 1, "first_k_dense_replace": 0,
    "norm_topk_prob": False, "scoring_func": "softmax", "hidden_act": "silu", "max_position_embeddings": 2048,
    "rms_norm_eps": 1e-6, "rope_theta": 10000.0, "rope_scaling": None, "attention_bias": False, "use_mla": True,
    "bos_token_id": 100000, "eos_token_id": 100001,
}


def language_config(folder: Path) -> dict:
    p = folder / "config.json"
    if not p.is_file():
        die(f"{folder}: no config.json (expected a dsvl2 / DeepSeek-VL2 checkpoint folder)")
    root = json.loads(p.read_text())
    if "language_config" not in root:
        die(f"{p}: no language_config section")
    lc = dict(LANGUAGE_DEFAULTS)
    for k, v in root["language_config"].items():
        # null LoRA ranks mean "none" (MHA configs, MLA without q LoRA)
        if k in ("kv_lora_rank", "q_lora_rank") and v is None:
            lc[k] = 0
        elif v is not None or k == "rope_scaling":
            lc[k] = v
    if lc["topk_method"] == "gready":
        lc["topk_method"] = "greedy"
    return lc


ST_DTYPES = {"BF16": (np.uint16, "bf16"), "F16": (np.float16, "f16"), "F32": (np.float32, "f32")}


class Checkpoint:
    """Memory-mapped tensors of model.safetensors or model-*-of-*.safetensors."""

    def __init__(self, folder: Path):
        self.tensors: dict[str, tuple[Path, int, str, list[int]]] = {}
        index = folder / "model.safetensors.index.json"
        if index.is_file():
            files = sorted(set(json.loads(index.read_text())["weight_map"].values()))
        elif (folder / "model.safetensors").is_file():
            files = ["model.safetensors"]
        else:
            die(f"{folder}: no model.safetensors or model.safetensors.index.json")
        for f in files:
            path = folder / f
            with open(path, "rb") as fp:
                (n,) = struct.unpack("<Q", fp.read(8))
                header = json.loads(fp.read(n))
            for name, info in header.items():
                if name == "__metadata__":
                    continue
                if info["dtype"] not in ST_DTYPES:
                    die(f"{path}: tensor {name} has dtype {info['dtype']} (only BF16, F16, F32 are converted)")
                self.tensors[name] = (path, 8 + n + info["data_offsets"][0], info["dtype"], info["shape"])
        self._maps: dict[Path, np.memmap] = {}

    def has(self, name: str) -> bool:
        return name in self.tensors

    def get(self, name: str) -> tuple[np.ndarray, str]:
        """(array, kind): BF16 tensors come back as raw uint16 with kind "bf16"."""
        if name not in self.tensors:
            die(f"checkpoint has no tensor {name}")
        path, off, dt, shape = self.tensors[name]
        if path not in self._maps:
            self._maps[path] = np.memmap(path, dtype=np.uint8, mode="r")
        np_dt, kind = ST_DTYPES[dt]
        count = int(np.prod(shape)) if shape else 1
        raw = self._maps[path][off: off + count * np.dtype(np_dt).itemsize]
        return raw.view(np_dt).reshape(shape), kind


def to_f32(a: np.ndarray, kind: str) -> np.ndarray:
    if kind == "bf16":
        return (a.astype(np.uint32) << 16).view(np.float32)
    return a.astype(np.float32)


# ---------------------------------------------------------------------------
# The tokenizer: tokenizer.json (byte-level BPE) -> llama.cpp "gpt2" vocab.

def write_vocab(w, gguf, tokenizer: Path, lc: dict) -> int:
    tj = json.loads(tokenizer.read_text(encoding="utf-8"))
    model = tj.get("model", {})
    if model.get("type") != "BPE":
        die(f"{tokenizer}: model type {model.get('type')!r}: only byte-level BPE tokenizers are converted")
    id_to_tok: dict[int, str] = {i: t for t, i in model["vocab"].items()}
    special: dict[int, bool] = {}
    for a in tj.get("added_tokens", []):
        id_to_tok[a["id"]] = a["content"]
        special[a["id"]] = bool(a.get("special"))
    n_vocab = lc["vocab_size"]
    top = max(id_to_tok)
    if top >= n_vocab:
        die(f"{tokenizer}: token id {top} >= the model's vocab_size {n_vocab}: wrong tokenizer for this checkpoint "
            "(DeepSeek-VL2 Small uses the DeepSeek-V2 tokenizer, Tiny and Base the DeepSeek-V3 one)")
    tokens, types = [], []
    for i in range(n_vocab):  # padded as convert_hf_to_gguf pads: [PAD{i}], UNUSED
        if i not in id_to_tok:
            tokens.append(f"[PAD{i}]")
            types.append(gguf.TokenType.UNUSED)
        elif i in special:
            t = id_to_tok[i]
            tokens.append(t)
            # as convert_hf_to_gguf.py: special, or looking special (<|...|>, <｜...｜>) -> CONTROL
            looks = (t.startswith("<|") and t.endswith("|>")) or (t.startswith("<｜") and t.endswith("｜>"))
            types.append(gguf.TokenType.CONTROL if special[i] or looks else gguf.TokenType.USER_DEFINED)
        else:
            tokens.append(id_to_tok[i])
            types.append(gguf.TokenType.NORMAL)
    merges = model.get("merges", [])
    merges = [m if isinstance(m, str) else " ".join(m) for m in merges]
    # The pre-tokenizer regexes llama.cpp applies: DeepSeek-V3's (Tiny, Base) or
    # DeepSeek-LLM's (Small: the DeepSeek-V2 tokenizer), told apart by their digit split.
    pre = "deepseek-v3" if "\\p{N}{1,3}" in json.dumps(tj.get("pre_tokenizer")) else "deepseek-llm"
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre(pre)
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_merges(merges)
    w.add_bos_token_id(lc["bos_token_id"])
    w.add_eos_token_id(lc["eos_token_id"])
    w.add_add_bos_token(True)   # tokenizer_config: add_bos_token true
    w.add_add_eos_token(False)
    return len(tokens)


# ---------------------------------------------------------------------------
# convert

def import_gguf(llama_dir: Path):
    gp = llama_dir / "gguf-py"
    if not (gp / "gguf" / "__init__.py").is_file():
        die(f"{llama_dir}: no gguf-py/gguf (expected a llama.cpp checkout)")
    sys.path.insert(0, str(gp))
    # gguf-py imports sentencepiece (vocab.py) and yaml (metadata.py) at load
    # time for features not used here; stand-ins let it load without them.
    import importlib.util
    import types
    for mod, attrs in (("sentencepiece", ("SentencePieceProcessor",)), ("yaml", ())):
        if importlib.util.find_spec(mod) is None:
            stub = types.ModuleType(mod)
            for attr in attrs:
                setattr(stub, attr, None)
            sys.modules[mod] = stub
    import gguf  # noqa: E402  (llama.cpp's own package)
    return gguf


def llama_lite_layer_counts(llama_dir: Path) -> set[int] | None:
    """The layer counts llama.cpp's deepseek2 treats as 'lite' (no q LoRA), read from its source."""
    for src in (llama_dir / "src" / "llama-model.cpp", llama_dir / "src" / "llama.cpp"):
        if src.is_file():
            m = re.search(r"is_lite\s*=\s*\(([^;]*)\);", src.read_text(errors="replace"))
            if m and "n_lora_q" not in m.group(1):
                return {int(x) for x in re.findall(r"n_layer\s*==\s*(\d+)", m.group(1))}
    return None


def check_supported(lc: dict, arch: str, llama_dir: Path) -> None:
    """Refuse configurations llama.cpp's graph would compute differently from dsvl2."""
    problems = []
    if lc["hidden_act"] != "silu":
        problems.append(f"hidden_act {lc['hidden_act']}")
    if lc["n_routed_experts"] <= 0:
        problems.append("a dense language model (n_routed_experts 0): llama.cpp's deepseek graphs need experts")
    if lc["n_shared_experts"] <= 0:
        problems.append("no shared experts: llama.cpp's deepseek graphs require them")
    if lc["moe_layer_freq"] != 1:
        problems.append(f"moe_layer_freq {lc['moe_layer_freq']} (llama.cpp: every layer after the dense ones is MoE)")
    if lc["n_group"] > 1 and lc["topk_group"] < lc["n_group"]:
        problems.append(f"group-limited routing (n_group {lc['n_group']}, topk_group {lc['topk_group']}): "
                        "llama.cpp ignores expert groups")
    if arch == "deepseek":
        if lc["scoring_func"] != "softmax":
            problems.append("sigmoid routing with MHA attention (llama.cpp's deepseek graph is softmax only)")
        if lc["norm_topk_prob"] and lc["num_experts_per_tok"] > 1:
            problems.append("norm_topk_prob with MHA attention (llama.cpp's deepseek graph does not normalize)")
        if lc["attention_bias"]:
            problems.append("attention_bias (llama.cpp's deepseek graph has no q/k/v/o biases)")
        if lc["rope_scaling"]:
            problems.append("rope_scaling with MHA attention (dsvl2 refuses it too)")
    else:
        if lc["attention_bias"]:
            problems.append("attention_bias (llama.cpp's deepseek2 graph has no biases)")
        if lc["q_lora_rank"] == 0:
            lite = llama_lite_layer_counts(llama_dir)
            if lite is not None and lc["num_hidden_layers"] not in lite:
                problems.append(
                    f"MLA without q LoRA at {lc['num_hidden_layers']} layers: this llama.cpp treats only "
                    f"{sorted(lite)}-layer deepseek2 models as having no q LoRA (src/llama-model.cpp is_lite)")
        if abs(lc["rms_norm_eps"] - 1e-6) > 1e-12:
            problems.append(f"rms_norm_eps {lc['rms_norm_eps']}: dsvl2's q_a/kv_a norms use 1e-6, llama.cpp uses "
                            "the model's eps for them")
        if lc["rope_scaling"] and lc["rope_scaling"].get("type", lc["rope_scaling"].get("rope_type")) != "yarn":
            problems.append("rope_scaling other than yarn")
    if problems:
        die("llama.cpp would not compute the same function for this checkpoint:\n  - " + "\n  - ".join(problems))


def cmd_convert(a: argparse.Namespace) -> None:
    folder = Path(a.model)
    llama_dir = Path(a.llama_dir)
    gguf = import_gguf(llama_dir)
    lc = language_config(folder)
    arch_name = "deepseek2" if lc["use_mla"] else "deepseek"
    arch = gguf.MODEL_ARCH.DEEPSEEK2 if lc["use_mla"] else gguf.MODEL_ARCH.DEEPSEEK
    check_supported(lc, arch_name, llama_dir)
    tokenizer = Path(a.tokenizer) if a.tokenizer else folder / "tokenizer.json"
    if not tokenizer.is_file():
        die(f"no tokenizer: {tokenizer} is missing (pass --tokenizer)")
    ck = Checkpoint(folder)
    L = lc["num_hidden_layers"]
    H, E = lc["num_attention_heads"], lc["n_routed_experts"]
    tmap = gguf.get_tensor_name_map(arch, L)

    def gname(hf: str) -> str:
        n = tmap.get_name(hf, try_suffixes=(".weight", ".bias"))
        if n is None:
            die(f"gguf-py has no {arch_name} tensor name for {hf}")
        return n

    # (gguf name, shape, ggml type, producer); producers return the array to write.
    plan: list[tuple[str, list[int], object, object]] = []
    T = gguf.GGMLQuantizationType
    a_f32 = a.f32  # every tensor f32 (exact from bf16): llama.cpp then computes in f32

    def gtype_of(kind: str, f32: bool):
        return T.F32 if (f32 or a_f32 or kind == "f32") else (T.BF16 if kind == "bf16" else T.F16)

    def add(hf_name: str, f32: bool = False, permute_heads: int = 0, gguf_name: str | None = None):
        full = "language." + hf_name
        a0, kind = ck.get(full)

        def produce():
            a, _ = ck.get(full)
            if permute_heads:
                # NeoX (rotate_half) head layout -> llama.cpp's adjacent-pair RoPE,
                # as convert_hf_to_gguf.py's DeepseekModel.permute does.
                a = a.reshape(permute_heads, 2, a.shape[0] // permute_heads // 2, *a.shape[1:])
                a = a.swapaxes(1, 2).reshape(-1, *a.shape[3:])
            return np.ascontiguousarray(to_f32(a, kind) if ((f32 or a_f32) and kind != "f32") else a)
        plan.append((gguf_name or gname(hf_name), list(a0.shape), gtype_of(kind, f32), produce))

    def add_experts(prefix: str, w: str):
        names = [f"language.{prefix}mlp.experts.{e}.{w}.weight" for e in range(E)]
        a0, kind = ck.get(names[0])

        def produce():
            return np.stack([to_f32(*ck.get(n)) if a_f32 else ck.get(n)[0] for n in names])
        plan.append((gname(f"{prefix}mlp.experts.{w}.weight"), [E] + list(a0.shape), gtype_of(kind, False), produce))

    add("model.embed_tokens.weight")
    for i in range(L):
        p = f"model.layers.{i}."
        add(p + "input_layernorm.weight", f32=True)
        if arch_name == "deepseek":
            add(p + "self_attn.q_proj.weight", permute_heads=H)
            add(p + "self_attn.k_proj.weight", permute_heads=lc["num_key_value_heads"])
            add(p + "self_attn.v_proj.weight")
        else:
            if lc["q_lora_rank"] > 0:
                add(p + "self_attn.q_a_proj.weight")
                add(p + "self_attn.q_a_layernorm.weight", f32=True)
                add(p + "self_attn.q_b_proj.weight")
            else:
                add(p + "self_attn.q_proj.weight")
            add(p + "self_attn.kv_a_proj_with_mqa.weight")
            add(p + "self_attn.kv_a_layernorm.weight", f32=True)
            add(p + "self_attn.kv_b_proj.weight")
        add(p + "self_attn.o_proj.weight")
        add(p + "post_attention_layernorm.weight", f32=True)
        moe = i >= lc["first_k_dense_replace"] and i % lc["moe_layer_freq"] == 0
        if not moe:
            for w in ("gate_proj", "up_proj", "down_proj"):
                add(p + f"mlp.{w}.weight")
            continue
        # The router stays f32, as convert_hf_to_gguf.py keeps it: llama.cpp then
        # computes the routing logits in f32, as dsvl2 does.
        add(p + "mlp.gate.weight", f32=True)
        if ck.has(f"language.{p}mlp.gate.e_score_correction_bias"):
            add(p + "mlp.gate.e_score_correction_bias", f32=True,
                gguf_name=gname(p + "mlp.gate.e_score_correction.bias"))
        for w in ("gate_proj", "up_proj", "down_proj"):
            add_experts(p, w)
        for w in ("gate_proj", "up_proj", "down_proj"):
            add(p + f"mlp.shared_experts.{w}.weight")
    add("model.norm.weight", f32=True)
    add("lm_head.weight")

    out = Path(a.out)
    tmp = out.with_name(out.name + ".part")
    w = gguf.GGUFWriter(str(tmp), arch_name)
    w.add_name(f"dsvl2 language model of {folder.name}")
    w.add_context_length(lc["max_position_embeddings"])
    w.add_embedding_length(lc["hidden_size"])
    w.add_block_count(L)
    w.add_feed_forward_length(lc["intermediate_size"])
    w.add_head_count(H)
    w.add_head_count_kv(lc["num_key_value_heads"] if arch_name == "deepseek" else H)
    w.add_rope_freq_base(float(lc["rope_theta"]))
    w.add_layer_norm_rms_eps(float(lc["rms_norm_eps"]))
    w.add_expert_count(E)
    w.add_expert_used_count(lc["num_experts_per_tok"])
    w.add_vocab_size(lc["vocab_size"])
    w.add_leading_dense_block_count(lc["first_k_dense_replace"])
    w.add_expert_feed_forward_length(lc["moe_intermediate_size"])
    w.add_expert_shared_count(lc["n_shared_experts"])
    w.add_expert_weights_scale(float(lc["routed_scaling_factor"]))
    if arch_name == "deepseek":
        w.add_rope_dimension_count(lc["hidden_size"] // H)
        w.add_rope_scaling_type(gguf.RopeScalingType.NONE)
    else:
        if lc["q_lora_rank"] > 0:
            w.add_q_lora_rank(lc["q_lora_rank"])
        w.add_kv_lora_rank(lc["kv_lora_rank"])
        w.add_key_length(lc["qk_nope_head_dim"] + lc["qk_rope_head_dim"])
        w.add_value_length(lc["v_head_dim"])
        w.add_expert_weights_norm(bool(lc["norm_topk_prob"]) and lc["num_experts_per_tok"] > 1)
        w.add_expert_gating_func(gguf.ExpertGatingFuncType.SIGMOID if lc["scoring_func"] == "sigmoid"
                                 else gguf.ExpertGatingFuncType.SOFTMAX)
        w.add_rope_dimension_count(lc["qk_rope_head_dim"])
        rs = lc["rope_scaling"]
        if rs:
            w.add_rope_scaling_type(gguf.RopeScalingType.YARN)
            w.add_rope_scaling_factor(float(rs.get("factor", 1.0)))
            w.add_rope_scaling_orig_ctx_len(int(rs.get("original_max_position_embeddings", 4096)))
            w.add_rope_scaling_yarn_log_mul(0.1 * float(rs.get("mscale_all_dim", 0.0)))
        else:  # llama.cpp's deepseek2 requires the key; 0 leaves the attention scale alone
            w.add_rope_scaling_type(gguf.RopeScalingType.NONE)
            w.add_rope_scaling_yarn_log_mul(0.0)
    w.add_file_type(gguf.LlamaFileType.ALL_F32 if a_f32 else gguf.LlamaFileType.MOSTLY_BF16)
    w.add_quantization_version(gguf.GGML_QUANT_VERSION)
    n_tok = write_vocab(w, gguf, tokenizer, lc)

    # Tensor infos first, then the data streamed one tensor at a time (the
    # stacked experts of a layer are the largest buffer held).
    for name, shape, gtype, _ in plan:
        itemsize = 4 if gtype == T.F32 else 2
        w.add_tensor_info(name, shape, np.dtype(np.float32 if gtype == T.F32 else np.uint16),
                          int(np.prod(shape)) * itemsize, raw_dtype=gtype)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_ti_data_to_file()
    total = 0
    for name, shape, gtype, produce in plan:
        arr = produce()
        if list(arr.shape) != shape:
            die(f"internal: {name} planned {shape}, produced {list(arr.shape)}")
        w.write_tensor_data(arr)
        total += arr.nbytes
    w.close()
    os.replace(tmp, out)
    print(f"convert: {folder} -> {out}: llama.cpp arch {arch_name}, {L} layers, {E} experts "
          f"(top-{lc['num_experts_per_tok']}, {lc['n_shared_experts']} shared, {lc['first_k_dense_replace']} dense "
          f"first), {len(plan)} tensors, {total / 1e9:.2f} GB, vocab {n_tok} from {tokenizer}")


# ---------------------------------------------------------------------------
# llama-perplexity --kl-divergence-base files

class KlBase:
    """The file layout of llama-perplexity's --kl-divergence-base (examples/perplexity)."""

    def __init__(self, path: Path):
        self.path = path
        with open(path, "rb") as f:
            if f.read(8) != b"_logits_":
                die(f"{path}: not a llama-perplexity --kl-divergence-base file")
            self.n_ctx, self.n_vocab, self.n_chunk = struct.unpack("<Iii", f.read(12))
            self.tokens = np.frombuffer(f.read(4 * self.n_ctx * self.n_chunk), dtype=np.int32).reshape(
                self.n_chunk, self.n_ctx)
            self.data_offset = f.tell()
        self.first = self.n_ctx // 2
        self.n_scored = self.n_ctx - 1 - self.first   # positions first .. n_ctx-2 of each chunk
        self.nv = 2 * ((self.n_vocab + 1) // 2) + 4
        self.map = np.memmap(path, dtype=np.uint16, mode="r", offset=self.data_offset,
                             shape=(self.n_chunk, self.n_scored, self.nv))

    def log_probs(self, chunk: int) -> tuple[np.ndarray, np.ndarray]:
        """(log-probs [n_scored, n_vocab] as stored (quantized), raw uint16 codes)."""
        rec = np.asarray(self.map[chunk])
        head = rec[:, :4].copy().view(np.float32)   # scale, min_log_prob
        q = rec[:, 4: 4 + self.n_vocab]
        return head[:, 0:1] * q.astype(np.float32) + head[:, 1:2], q


def cmd_kl_ids(a: argparse.Namespace) -> None:
    base = KlBase(Path(a.base))
    out = Path(a.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for c in range(base.n_chunk):
        ids = base.tokens[c].tolist()
        ids[0] = a.bos  # llama-perplexity puts BOS first in every chunk (add_bos_token true)
        (out / f"chunk{c}.json").write_text(json.dumps(ids))
    print(json.dumps({"n_ctx": base.n_ctx, "n_chunk": base.n_chunk, "n_vocab": base.n_vocab}))


def log_softmax(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float64)
    m = x.max(axis=-1, keepdims=True)
    return x - (m + np.log(np.exp(x - m).sum(axis=-1, keepdims=True)))


def read_safetensors_f32(path: Path, name: str) -> np.ndarray:
    with open(path, "rb") as fp:
        (n,) = struct.unpack("<Q", fp.read(8))
        header = json.loads(fp.read(n))
    info = header.get(name)
    if info is None or info["dtype"] != "F32":
        die(f"{path}: no F32 tensor {name}")
    mm = np.memmap(path, dtype=np.uint8, mode="r")
    b, e = info["data_offsets"]
    return mm[8 + n + b: 8 + n + e].view(np.float32).reshape(info["shape"])


def kl_against_base(base: KlBase, chunk: int, logits: np.ndarray) -> dict:
    """llama-perplexity's KL(base || model) terms for one chunk, plus plain log-prob comparisons."""
    lp_base, q = base.log_probs(chunk)
    lg = logits[base.first: base.first + base.n_scored]
    lp = log_softmax(lg)
    # llama.cpp: sum over tokens with base log-prob > -16 of p_base * (lp_base - lp)
    keep = lp_base > -16.0
    p_base = np.exp(lp_base, where=keep, out=np.zeros_like(lp_base))
    kld = (p_base * (lp_base - lp) * keep).sum(axis=1)
    top_model = lg.argmax(axis=1)
    top_base = lp_base.argmax(axis=1)  # first maximum, as llama.cpp picks
    # Only where the base file stores the value exactly (not clipped at max-16).
    diff = np.abs(lp - lp_base)[q > 0]
    return {"kld": kld, "same_top": (top_model == top_base), "max_abs_logprob_diff": float(diff.max()),
            "mean_abs_logprob_diff": float(diff.mean())}


def cmd_kl_trace(a: argparse.Namespace) -> None:
    base = KlBase(Path(a.base))
    klds, same, maxd, meand = [], [], 0.0, []
    for c, trace in enumerate(a.trace):
        logits = read_safetensors_f32(Path(trace), "logits")
        if logits.shape != (base.n_ctx, base.n_vocab):
            die(f"{trace}: logits {logits.shape}, expected ({base.n_ctx}, {base.n_vocab})")
        r = kl_against_base(base, c, logits)
        klds.append(r["kld"])
        same.append(r["same_top"])
        maxd = max(maxd, r["max_abs_logprob_diff"])
        meand.append(r["mean_abs_logprob_diff"])
    k = np.concatenate(klds)
    s = np.concatenate(same)
    res = {"positions": int(k.size), "mean_kl": float(k.mean()), "kl_p99": float(np.percentile(k, 99)),
           "max_kl": float(k.max()), "same_top1": float(s.mean()), "max_abs_logprob_diff": maxd,
           "mean_abs_logprob_diff": float(np.mean(meand))}
    text = json.dumps(res)
    if a.out:
        Path(a.out).write_text(text + "\n")
    print(text)


# ---------------------------------------------------------------------------
# table

def parse_llama_kl(text: str) -> dict:
    def grab(label: str):
        m = re.search(label + r"\s*:\s*([-+0-9.eE]+)\s*(?:±\s*([-+0-9.eE]+))?", text)
        return float(m.group(1)) if m else None
    r = {"mean_kl": grab(r"Mean\s+KLD"), "kl_p99": grab(r"99\.0%\s+KLD"), "max_kl": grab(r"Maximum KLD"),
         "same_top1": grab(r"Same top p")}
    if r["same_top1"] is not None:
        r["same_top1"] /= 100.0  # printed as a percentage
    return r


def load_json(p: Path):
    try:
        return json.loads(p.read_text())
    except (OSError, ValueError):
        return None


def rounds_of(raw: Path, stem: str) -> list[Path]:
    """raw/STEM-r1.json, raw/STEM-r2.json, ... in round order."""
    found = [(int(m.group(1)), p) for p in raw.glob(f"{stem}-r*.json")
             if (m := re.fullmatch(re.escape(stem) + r"-r(\d+)\.json", p.name))]
    return [p for _, p in sorted(found)]


def load_before(bench_json: Path) -> float | None:
    """The 1-minute load average run.sh saved just before a timed run (others' work on the machine)."""
    try:
        return float((bench_json.with_suffix(".load")).read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def summary(runs: list[dict], keys) -> dict:
    """Per key: the best round (the headline: a shared machine's noise only
    slows a run down) and the mean of the rounds."""
    out = {}
    for k in keys:
        xs = [r[k] for r in runs if r[k] is not None]
        out[k] = max(xs) if xs else None
        out[k + "_mean"] = mean(xs)
    return out


def mean(xs):
    xs = [x for x in xs if x is not None]
    return sum(xs) / len(xs) if xs else None


def fmt(x, spec="{:.1f}", none="—"):
    return none if x is None else spec.format(x)


def cmd_table(a: argparse.Namespace) -> None:
    raw = Path(a.raw)
    rows_out = []
    specs = a.row or (raw / "rows.txt").read_text().splitlines()
    for spec in specs:
        label, ltype, lfile, dtype, dfile = spec.split("|")
        row: dict = {"label": label, "llama_type": ltype or None, "dsvl2_type": dtype or None}
        if ltype:
            runs = []
            for p in rounds_of(raw, f"llama-bench-{ltype}"):
                j = load_json(p) or []
                pp = next((x for x in j if x.get("n_prompt") == 512 and x.get("n_gen") == 0), None)
                tg = next((x for x in j if x.get("n_gen") == 128 and x.get("n_prompt") == 0), None)
                runs.append({"pp512": pp and pp["avg_ts"], "pp512_sd": pp and pp["stddev_ts"],
                             "tg128": tg and tg["avg_ts"], "tg128_sd": tg and tg["stddev_ts"],
                             "loadavg_before": load_before(p)})
            kl_txt = raw / f"llama-kl-{ltype}.txt"
            sz = load_json(raw / f"size-llama-{ltype}.json")
            row["llama"] = {
                "file": lfile, "file_gb": sz and sz["gb"],
                "rounds": runs, **summary(runs, ("pp512", "tg128")),
                "quality_vs_llama_bf16": parse_llama_kl(kl_txt.read_text(errors="replace")) if kl_txt.exists()
                else None}
        if dtype:
            runs = []
            for p in rounds_of(raw, f"dsvl2-bench-{dtype}"):
                j = load_json(p)
                if not j:
                    continue
                runs.append({"pp512": j.get("prefill_tok_s"), "tg128": j.get("decode_tok_s"),
                             "mem_gbs": j.get("roofline", {}).get("mem_gbs"),
                             "tg128_roofline": j.get("roofline_rates", {}).get("decode_tok_s"),
                             "decode_fraction": j.get("fraction", {}).get("decode"),
                             "quality": j.get("quality"), "loadavg_before": load_before(p)})
            q = next((r["quality"] for r in runs if r["quality"]), None)
            best_tg = max((r for r in runs if r["tg128"]), key=lambda r: r["tg128"], default=None)
            sz = load_json(raw / f"size-dsvl2-{dtype}.json")
            row["dsvl2"] = {
                "file": dfile, "file_gb": sz and sz["gb"], "file_gb_language": sz and sz.get("gb_language"),
                "rounds": runs, **summary(runs, ("pp512", "tg128")),
                # the roofline of the run that gave the best tg128
                **{k: best_tg[k] if best_tg else None for k in ("mem_gbs", "tg128_roofline", "decode_fraction")},
                "quality_vs_dsvl2_bf16": q,
                "quality_vs_llama_bf16_same_text": load_json(raw / f"dsvl2-samekl-{dtype}.json")}
        if row.get("llama") and row.get("dsvl2"):
            for k in ("pp512", "tg128"):
                l, d = row["llama"][k], row["dsvl2"][k]
                row[f"ratio_{k}"] = d / l if l and d else None
        rows_out.append(row)

    meta = load_json(raw / "meta.json") or {}
    md = []
    md.append(f"# dsvl2 vs llama.cpp: {meta.get('model', '?')}")
    md.append("")
    md.append(f"{meta.get('threads', '?')} threads on {meta.get('cpu', '?')}; llama-bench -p 512 -n 128 -r 3 "
              f"and `dsvl2 bench --json --compute {meta.get('compute', '?')}` alternated per type, rounds: "
              f"{meta.get('rounds', '?')} (tok/s: the best round; every round below). llama.cpp {meta.get('llama_commit', '?')}; "
              f"dsvl2 {meta.get('dsvl2_commit', '?')}. {meta.get('date', '')}")
    md.append("")
    md.append("| type (llama.cpp / dsvl2) | llama.cpp pp512 | llama.cpp tg128 | dsvl2 pp512 | dsvl2 tg128 "
              "| pp ratio | tg ratio | dsvl2 mem roofline GB/s (tg128 bound, fraction) | llama.cpp KL vs its BF16 "
              "(top-1) | dsvl2 KL vs its BF16 (top-1) | dsvl2 KL vs llama.cpp BF16, same text (top-1) "
              "| file GB, language model (llama.cpp / dsvl2 (whole file)) |")
    md.append("|" + "---|" * 12)
    for r in rows_out:
        L, D = r.get("llama") or {}, r.get("dsvl2") or {}
        lq = L.get("quality_vs_llama_bf16") or {}
        dq = D.get("quality_vs_dsvl2_bf16") or {}
        sq = D.get("quality_vs_llama_bf16_same_text") or {}
        bf16_l = (r["llama_type"] or "").upper() == "BF16"
        bf16_d = (r["dsvl2_type"] or "").lower() == "bf16"
        lkl = "0 (base)" if bf16_l else (f"{lq['mean_kl']:.5f} ({lq['same_top1']:.3f})"
                                         if lq.get("mean_kl") is not None else "—")
        dkl = "0 (base)" if bf16_d else (f"{dq['mean_kl']:.5f} ({dq['top1_agreement']:.3f})" if dq else "—")
        skl = f"{sq['mean_kl']:.5f} ({sq['same_top1']:.3f})" if sq else "—"
        roof = (f"{D['mem_gbs']:.1f} ({D['tg128_roofline']:.1f} tok/s, {D['decode_fraction']:.2f})"
                if D.get("mem_gbs") else "—")
        md.append(
            f"| {r['llama_type'] or '—'} / {r['dsvl2_type'] or '—'} | {fmt(L.get('pp512'))} | {fmt(L.get('tg128'))} "
            f"| {fmt(D.get('pp512'))} | {fmt(D.get('tg128'))} | {fmt(r.get('ratio_pp512'), '{:.2f}')} "
            f"| {fmt(r.get('ratio_tg128'), '{:.2f}')} | {roof} | {lkl} | {dkl} | {skl} "
            f"| {fmt(L.get('file_gb'), '{:.2f}')} / {fmt(D.get('file_gb_language'), '{:.2f}')} "
            f"({fmt(D.get('file_gb'), '{:.2f}')}) |")
    md.append("")
    md.append("Every round (tok/s), with the 1-minute load average just before it:")
    md.append("")
    md.append("| type | engine | round | pp512 | tg128 | load average before |")
    md.append("|---|---|---|---|---|---|")
    for r in rows_out:
        for eng, key in (("llama.cpp", "llama"), ("dsvl2", "dsvl2")):
            for i, x in enumerate((r.get(key) or {}).get("rounds", [])):
                t = r["llama_type"] if key == "llama" else r["dsvl2_type"]
                md.append(f"| {t} | {eng} | {i + 1} | {fmt(x['pp512'])} | {fmt(x['tg128'])} "
                          f"| {fmt(x.get('loadavg_before'), '{:.2f}')} |")
    md.append("")
    md.append("KL columns: llama.cpp's from `llama-perplexity --kl-divergence` against its BF16 GGUF on "
              f"{meta.get('kl_text', 'the bundled text')} ({meta.get('kl_positions', '?')} scored positions); "
              "dsvl2's own from `dsvl2 bench --against FOLDER` (256 random-id positions, against the BF16 "
              "folder); the same-text column runs `dsvl2 trace` on the very ids llama-perplexity evaluated and "
              "scores them as llama-perplexity does against llama.cpp's BF16 log-probabilities (its bf16 row is "
              "the cross-engine agreement). Ratios are dsvl2 / llama.cpp. File sizes: llama.cpp's GGUFs hold the "
              "language model only; dsvl2's files (the BF16 folder, its quantized .gguf) also hold the vision "
              "tower and projector, so the first dsvl2 figure counts only its language.* tensors.")
    text = "\n".join(md) + "\n"
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "table.md").write_text(text)
    (out / "table.json").write_text(json.dumps({"meta": meta, "rows": rows_out}, indent=2) + "\n")
    print(text)


# ---------------------------------------------------------------------------

# ---------------------------------------------------------------------------
# lm-size: the bytes of a dsvl2 file's language model, as llama.cpp's GGUF holds it

def cmd_lm_size(a) -> None:
    """{"gb": whole file(s), "gb_language": tensors named language.*}, for a .gguf or a safetensors folder."""
    path = Path(a.path)
    total = lang = 0
    if path.is_dir():
        for f in sorted(path.glob("*.safetensors")):
            with open(f, "rb") as fp:
                (n,) = struct.unpack("<Q", fp.read(8))
                header = json.loads(fp.read(n))
            total += f.stat().st_size
            for name, info in header.items():
                if name != "__metadata__" and name.startswith("language."):
                    lang += info["data_offsets"][1] - info["data_offsets"][0]
    else:
        gguf = import_gguf(Path(a.llama_dir))
        total = path.stat().st_size
        lang = sum(int(t.n_bytes) for t in gguf.GGUFReader(str(path)).tensors if t.name.startswith("language."))
    print(json.dumps({"gb": round(total / 1e9, 4), "gb_language": round(lang / 1e9, 4)}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("convert", help="checkpoint folder -> llama.cpp BF16 GGUF of the language model")
    p.add_argument("--model", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--llama-dir", required=True, help="llama.cpp checkout (its gguf-py is imported)")
    p.add_argument("--tokenizer", help="tokenizer.json (default: the folder's)")
    p.add_argument("--f32", action="store_true",
                   help="write every tensor as f32 (for checking the function: llama.cpp then computes in f32)")
    p.set_defaults(fn=cmd_convert)
    p = sub.add_parser("kl-ids", help="KL base file -> chunk<N>.json id lists")
    p.add_argument("--base", required=True)
    p.add_argument("--out-dir", required=True)
    p.add_argument("--bos", type=int, required=True)
    p.set_defaults(fn=cmd_kl_ids)
    p = sub.add_parser("kl-trace", help="KL of dsvl2 trace logits (one file per chunk) against a KL base file")
    p.add_argument("--base", required=True)
    p.add_argument("--trace", nargs="+", required=True)
    p.add_argument("--out")
    p.set_defaults(fn=cmd_kl_trace)
    p = sub.add_parser("lm-size", help="file or folder size and its language model's bytes (JSON)")
    p.add_argument("path")
    p.add_argument("--llama-dir", help="llama.cpp checkout (its gguf-py reads a .gguf)")
    p.set_defaults(fn=cmd_lm_size)
    p = sub.add_parser("table", help="raw results -> table.md / table.json")
    p.add_argument("--raw", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--row", action="append", default=[],
                   help="label|llama_type|llama_file|dsvl2_type|dsvl2_file (default: RAW/rows.txt)")
    p.set_defaults(fn=cmd_table)
    a = ap.parse_args()
    a.fn(a)


if __name__ == "__main__":
    main()
