"""Prediction speed: rs predict against transformers.pipeline on a KcELECTRA-base-sized model.

    python bench/predict_speed.py              # the speed table, about 6 minutes on 2 cores
    python bench/predict_speed.py --million    # + streamed 1 M-row predict and preprocess memory (~20 min)
    python bench/predict_speed.py --parts accuracy   # rerun one part; the others keep their saved results
    python bench/predict_speed.py --device cuda --reviews 4096 --million    # on a GPU machine (--no-kiwi and
        --corpus CSV where kiwipiepy or ../shared is missing)

The checkpoint is built locally (no hub): KcELECTRA-base's shape (12 x 768, vocabulary 54,343 from a WordPiece
trained on reviews), random weights, three labels; `transformers.pipeline` loads the same folder. Reviews come
from ../shared/data/nsmc_reviews.csv.gz when present, else from the bundled sample. Every variant runs in its own
process (so peak RSS is its own) on the same normalized reviews, and reports reviews/s, tokens/s (real tokens,
[CLS]/[SEP] included, padding not), % of the measured fp32 matmul peak (tokens/s x GFLOP per token / peak; the
peak is the better of torch's default and oneDNN on the model's largest matmul, measured before the variants and
again inside each rs variant, the higher one counting),
label agreement with pipeline(batch_size=1) and peak RSS. Results: bench/results/predict_speed_DEVICE.json.
With onnxruntime and onnx installed (`pip install onnxruntime onnx`), ONNX Runtime fp32 and int8 rows are added:
the alternative fast path, measured with rs's batching.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
NSMC = REPO.parent / "shared" / "data" / "nsmc_reviews.csv.gz"
SAMPLE = REPO / "data" / "sample_reviews.csv"
RESULTS = REPO / "bench" / "results"
WORK = RESULTS / "predict_speed"
LABELS = ["negative", "neutral", "positive"]
SHAPES = {  # KcELECTRA-base-v2022's shape; "tiny" for the million-row memory run on a CPU
    "base": {"hidden_size": 768, "layers": 12, "heads": 12, "vocab_size": 54343},
    "tiny": {"hidden_size": 64, "layers": 2, "heads": 2, "vocab_size": 8000},
    "mini": {
        "hidden_size": 128,
        "layers": 4,
        "heads": 2,
        "vocab_size": 16000,
    },  # rs pretrain --size mini (training_speed)
}


def peak_rss_mb() -> float:
    """This process's peak resident memory. VmHWM, not getrusage's ru_maxrss: Linux carries ru_maxrss over from the
    parent across fork and exec, so every child would report at least the parent's peak."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / (1024 if sys.platform != "darwin" else 2**20)


def corpus(count: int, offset: int = 0) -> list[str]:
    """`count` raw reviews: NSMC's (or --corpus's) when present, else the bundled sample repeated."""
    import pandas as pd

    path = Path(os.environ.get("RS_BENCH_CORPUS", NSMC))
    if path.exists():
        texts = pd.read_csv(path, dtype=str, keep_default_na=False, nrows=offset + count)["review"].tolist()
        if len(texts) >= offset + count:
            return texts[offset : offset + count]
        return [texts[i % len(texts)] for i in range(offset, offset + count)]
    texts = pd.read_csv(SAMPLE, dtype=str, keep_default_na=False)["review"].tolist()
    return [texts[i % len(texts)] for i in range(offset, offset + count)]


def recipe():
    """The default normalization, or with --no-kiwi (a machine without kiwipiepy) the kiwipiepy-free part."""
    from review_sentiment.normalize import NormalizationRecipe

    return NormalizationRecipe(sentence_split=os.environ.get("RS_BENCH_NO_KIWI") != "1")


def build_checkpoint(size: str) -> Path:
    """A KcELECTRA-shaped rs model folder with random weights (cached under bench/results/predict_speed)."""
    folder = WORK / f"electra-{size}-random{'' if recipe().sentence_split else '-nokiwi'}"
    if (folder / "rs_meta.json").exists():
        return folder
    import torch
    from transformers import ElectraConfig, ElectraForSequenceClassification, ElectraTokenizer

    from review_sentiment.modelstore import library_versions, save_model_folder, save_transformer
    from review_sentiment.normalize import normalize_texts
    from review_sentiment.reporting import silence_library_logs
    from review_sentiment.vocab import SPECIAL_TOKENS, train_wordpiece_vocab

    silence_library_logs()
    shape = SHAPES[size]
    vocab = train_wordpiece_vocab(normalize_texts(corpus(50_000, offset=100_000), recipe()), shape["vocab_size"])
    for extra in range(shape["vocab_size"] - len(vocab)):  # a small corpus may not fill the vocabulary
        vocab[f"[unused{extra}]"] = len(vocab)
    assert list(vocab)[: len(SPECIAL_TOKENS)] == SPECIAL_TOKENS
    tokenizer = ElectraTokenizer(vocab=vocab, do_lower_case=False, strip_accents=False, model_max_length=512)
    config = ElectraConfig(
        vocab_size=len(vocab),
        embedding_size=shape["hidden_size"],
        hidden_size=shape["hidden_size"],
        num_hidden_layers=shape["layers"],
        num_attention_heads=shape["heads"],
        intermediate_size=4 * shape["hidden_size"],
        max_position_embeddings=512,
        num_labels=len(LABELS),
        id2label=dict(enumerate(LABELS)),
        label2id={label: i for i, label in enumerate(LABELS)},
    )
    torch.manual_seed(0)
    model = ElectraForSequenceClassification(config).eval()
    meta = {
        "name": folder.name,
        "labels": LABELS,
        "normalization": recipe().to_dict(),
        "max_length": 128,
        "base": {"source": f"random weights, KcELECTRA-{size} shape", "revision": None},
        "library_versions": library_versions(),
    }
    return save_model_folder(save_transformer(model, tokenizer), meta, folder, force=True)


def instruction_set() -> str:
    """The CPU's widest matmul instructions, as the benchmark tables name them: AMX, AVX-512 (with AVX512-BF16
    where it has bf16 dot products), AVX2."""
    cpuinfo = Path("/proc/cpuinfo")
    lines = cpuinfo.read_text().splitlines() if cpuinfo.exists() else []
    flags = next((set(line.split(":", 1)[1].split()) for line in lines if line.startswith("flags")), set())
    if "amx_tile" in flags:
        return "AMX"
    if "avx512f" in flags:
        return "AVX-512 with AVX512-BF16" if "avx512_bf16" in flags else "AVX-512"
    return "AVX2" if "avx2" in flags else "other"


def matmul_peak(trials: int = 3) -> dict:
    """fp32 GFLOP/s of the model's largest matmul (tokens x 768 x 3072) with torch's default kernel (MKL on x86)
    and with oneDNN, each the best of `trials` timings of 40 calls; the peak is the better of the two.

    Best of several, because a shared machine's speed dips for seconds at a time (one 2 s timing read 111 GFLOP/s
    where the timings around it read 190-200): a dip would lower the peak and inflate every share of it."""
    import torch

    from review_sentiment.inference import onednn_available

    tokens, inner, outer = 1024, 768, 3072
    inputs, weight, bias = torch.randn(tokens, inner), torch.randn(outer, inner), torch.randn(outer)
    runs = {"default": lambda: torch.nn.functional.linear(inputs, weight, bias)}
    if onednn_available():
        packed = torch.ops.mkldnn._reorder_linear_weight(weight)
        runs["onednn"] = lambda: torch.ops.mkldnn._linear_pointwise(inputs, packed, bias, "none", [], "")
    result = {}
    with torch.inference_mode():
        for name, run in runs.items():
            for _ in range(5):
                run()
            repeats, seconds = 40, []
            for _ in range(trials):
                started = time.perf_counter()
                for _ in range(repeats):
                    run()
                seconds.append(time.perf_counter() - started)
            result[name] = 2 * tokens * inner * outer * repeats / min(seconds) / 1e9
    result["peak"] = max(result.values())
    return {name: round(value, 1) for name, value in result.items()}


def nonembedding_parameters(folder: Path) -> int:
    from safetensors import safe_open

    with safe_open(folder / "model.safetensors", "pt") as weights:
        shapes = [weights.get_slice(name).get_shape() for name in weights.keys() if "embeddings" not in name]
    return sum(math.prod(shape) for shape in shapes)


def child_variant(args) -> dict:
    """One speed variant in this process: labels and seconds for the reviews in args.texts."""
    texts = json.loads(Path(args.texts).read_text(encoding="utf-8"))
    folder = Path(args.model)
    if args.variant.startswith("pipeline"):
        from transformers import pipeline

        from review_sentiment.inference import set_cpu_threads
        from review_sentiment.reporting import silence_library_logs

        silence_library_logs()
        if args.device == "cpu":
            set_cpu_threads()
        classify = pipeline("text-classification", model=str(folder), device=args.device)
        batch_size = int(args.variant.removeprefix("pipeline-bs"))
        classify(texts[:8], batch_size=batch_size)  # warm-up
        started = time.perf_counter()
        outputs = classify(texts, batch_size=batch_size, truncation=True, max_length=128)
        seconds = time.perf_counter() - started
        return {"seconds": seconds, "labels": [output["label"] for output in outputs], "rss_mb": peak_rss_mb()}
    if args.variant.startswith("onnxruntime"):
        return onnxruntime_variant(args, texts, folder)
    from review_sentiment.scoring import Predictor, labels_from_probabilities

    precision = {"rs-fp32": "fp32", "rs-int8": "int8", "rs-half": None}[args.variant]
    predictor = Predictor(folder, device=args.device, precision=precision)
    predictor.probabilities(texts[:8])  # warm-up: Kiwi, kernels
    started = time.perf_counter()
    prepared = predictor.prepare(texts)
    prepared_seconds = time.perf_counter() - started
    probabilities = predictor.score(prepared)
    seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "model_seconds": seconds - prepared_seconds,
        "labels": labels_from_probabilities(probabilities, predictor.labels),
        "rss_mb": peak_rss_mb(),
        "precision": predictor.precision,
        # measured right after the run, in the same process: the machine's speed drifts by 10 % between runs
        "matmul_gflops": matmul_peak() if args.device == "cpu" else None,
    }


def onnxruntime_variant(args, texts: list[str], folder: Path) -> dict:
    """The same model exported to ONNX (fp32, or int8 by onnxruntime's dynamic quantization), run by ONNX Runtime
    with rs's normalization and length-sorted token-budget batches: the alternative fast path to compare. The
    export and quantization are timed apart (setup_seconds); peak RSS includes the export."""
    import numpy as np
    import onnxruntime
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from review_sentiment.inference import CPU_BATCH_TOKENS, pad_batch, set_cpu_threads, token_budget_batches
    from review_sentiment.normalize import normalize_texts

    setup_started = time.perf_counter()  # what a user of this path would pay once per model
    exported = WORK / "model.onnx"
    model = AutoModelForSequenceClassification.from_pretrained(folder).eval()
    model.set_attn_implementation("eager")
    example = torch.ones(2, 16, dtype=torch.long)
    dynamic = {"input_ids": {0: "batch", 1: "length"}, "attention_mask": {0: "batch", 1: "length"}}
    torch.onnx.export(
        model, (example, example), exported, input_names=list(dynamic), output_names=["logits"],
        dynamic_axes=dynamic, opset_version=17, dynamo=False,
    )  # fmt: skip
    del model
    path = exported
    if args.variant == "onnxruntime-int8":
        path = WORK / "model.int8.onnx"
        quantize_dynamic(exported, path, weight_type=QuantType.QInt8)
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = set_cpu_threads(), 1
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    setup_seconds = time.perf_counter() - setup_started
    tokenizer = AutoTokenizer.from_pretrained(folder)
    normalize_texts(texts[:8], recipe())  # warm-up, as for rs: Kiwi
    started = time.perf_counter()
    encoded = tokenizer(normalize_texts(texts, recipe()), truncation=True, max_length=128)["input_ids"]
    logits = np.zeros((len(texts), len(LABELS)), dtype=np.float32)
    for rows in token_budget_batches([len(ids) for ids in encoded], CPU_BATCH_TOKENS):
        ids, mask = pad_batch([encoded[row] for row in rows], tokenizer.pad_token_id)
        logits[rows] = session.run(None, {"input_ids": ids.numpy(), "attention_mask": mask.numpy()})[0]
    seconds = time.perf_counter() - started
    labels = [LABELS[i] for i in logits.argmax(axis=1)]
    return {"seconds": seconds, "setup_seconds": setup_seconds, "labels": labels, "rss_mb": peak_rss_mb()}


def child_predict_file(args) -> dict:
    """rs predict on a file in this process (as the CLI runs it): seconds and peak RSS."""
    from review_sentiment.predict import predict_file

    started = time.perf_counter()
    summary = predict_file(
        args.input, args.output, model_dir=args.model, device=args.device, chunk_rows=args.chunk_rows
    )
    return {"seconds": time.perf_counter() - started, "rows": summary.rows, "rss_mb": peak_rss_mb()}


def child_preprocess_file(args) -> dict:
    from review_sentiment.preprocess import preprocess_file

    started = time.perf_counter()
    summary = preprocess_file(args.input, args.output, processed_dir=WORK / "processed", recipe=recipe())
    return {"seconds": time.perf_counter() - started, "rows": summary.rows_in, "rss_mb": peak_rss_mb()}


def in_child(*arguments: str) -> dict:
    print(f"… {' '.join(arguments[:3])}", file=sys.stderr, flush=True)
    command = [sys.executable, __file__, "--child", *arguments]
    done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    if done.returncode:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def speed_table(args) -> dict:
    from transformers import AutoTokenizer

    from review_sentiment.normalize import normalize_texts

    folder = build_checkpoint("base")
    texts = [text for text in normalize_texts(corpus(args.reviews), recipe()) if text]
    texts_path = WORK / "speed_texts.json"
    texts_path.write_text(json.dumps(texts, ensure_ascii=False), encoding="utf-8")
    tokenizer = AutoTokenizer.from_pretrained(folder)
    tokens = sum(len(ids) for ids in tokenizer(texts, truncation=True, max_length=128)["input_ids"])
    gflop_per_token = 2 * nonembedding_parameters(folder) / 1e9  # a multiply-add per weight; attention scores aside
    peak = matmul_peak() if args.device == "cpu" else None
    variants = ["pipeline-bs1", "pipeline-bs32"]
    variants += ["rs-fp32", "rs-int8"] if args.device == "cpu" else ["rs-fp32", "rs-half"]
    if args.device == "cpu" and importlib.util.find_spec("onnxruntime") and importlib.util.find_spec("onnx"):
        variants += ["onnxruntime-fp32", "onnxruntime-int8"]
    rows = {}
    for variant in variants:
        rows[variant] = in_child(
            "variant", "--variant", variant, "--model", str(folder), "--texts", str(texts_path), "--device", args.device
        )
    reference = rows["pipeline-bs1"]["labels"]
    for row in rows.values():
        row["reviews_per_second"] = len(texts) / row["seconds"]
        row["tokens_per_second"] = tokens / row["seconds"]
        row["speedup"] = rows["pipeline-bs1"]["seconds"] / row["seconds"]
        row["agreement"] = sum(a == b for a, b in zip(row.pop("labels"), reference, strict=True)) / len(texts)
        if peak:
            ceiling = max(peak["peak"], (row.get("matmul_gflops") or {}).get("peak", 0))
            row["percent_of_peak"] = 100 * row["tokens_per_second"] * gflop_per_token / ceiling
            if "model_seconds" in row:
                row["model_percent_of_peak"] = 100 * tokens / row["model_seconds"] * gflop_per_token / ceiling
    return {
        "reviews": len(texts),
        "mean_tokens": tokens / len(texts),
        "gflop_per_token": gflop_per_token,
        "matmul_gflops": peak,
        "variants": rows,
    }


def int8_accuracy(args) -> dict:
    """fp32 vs --quantize int8 accuracy of a fine-tuned model on labeled reviews it has not seen: by default the
    ELECTRA-mini that `make bench-pretrain` fine-tunes on NSMC, on that benchmark's 10,000 held-out-movie reviews."""
    sys.path.insert(0, str(REPO / "bench"))
    import pandas as pd
    from pretrain_vs_random import binary_labels, split_by_movie

    reviews = pd.read_csv(NSMC, dtype=str, keep_default_na=False)
    test = binary_labels(split_by_movie(reviews, 0.10, seed=0)[1]).sample(n=10_000, random_state=0)
    texts_path = WORK / "accuracy_texts.json"
    texts_path.write_text(json.dumps(test["review"].tolist(), ensure_ascii=False), encoding="utf-8")
    gold = test["label"].tolist()
    result = {"model": str(args.accuracy_model), "reviews": len(test)}
    labels = {}
    for variant in ("rs-fp32", "rs-int8"):
        row = in_child(
            "variant", "--variant", variant, "--model", str(args.accuracy_model), "--texts", str(texts_path),
            "--device", "cpu",
        )  # fmt: skip
        labels[variant] = row["labels"]
        result[variant] = {
            "accuracy": sum(a == b for a, b in zip(row["labels"], gold, strict=True)) / len(gold),
            "reviews_per_second": len(gold) / row["seconds"],
        }
    result["agreement"] = sum(a == b for a, b in zip(*labels.values(), strict=True)) / len(gold)
    return result


def million_rows(args) -> dict:
    """Streamed rs predict and rs preprocess on a 1 M-row file: peak RSS and rows/s; streamed == in memory."""
    import pandas as pd

    size = "base" if args.device != "cpu" else "tiny"
    folder = build_checkpoint(size)
    source = corpus(100_000)
    rows = args.million_rows
    big = WORK / f"rows_{rows}.csv"
    if not big.exists():
        pd.DataFrame({"id": range(rows), "review": [source[i % len(source)] for i in range(rows)]}).to_csv(
            big, index=False
        )
    result = {"rows": rows, "file_mb": round(big.stat().st_size / 2**20, 1), "model": size}
    common = ["--model", str(folder), "--device", args.device]
    result["predict_streamed"] = in_child(
        "predict-file", "--input", str(big), "--output", str(WORK / "rows.labeled.csv"), *common
    )
    # Same result in one chunk (the non-streamed run) on a 100k-row slice: byte-identical files.
    head = WORK / "hundred_k.csv"
    pd.read_csv(big, dtype=str, keep_default_na=False, nrows=min(rows, 100_000)).to_csv(head, index=False)
    for name, chunk in (("chunked", 10_000), ("whole", 10**9)):
        result[f"predict_100k_{name}"] = in_child(
            "predict-file", "--input", str(head), "--output", str(WORK / f"hundred_k.{name}.csv"),
            "--chunk-rows", str(chunk), *common,
        )  # fmt: skip
    chunked, whole = ((WORK / f"hundred_k.{name}.csv").read_bytes() for name in ("chunked", "whole"))
    result["streamed_equals_whole"] = chunked == whole
    if args.device == "cpu":  # the base-size model's own memory, streamed, on a slice the CPU finishes
        base = build_checkpoint("base")
        slice_path = WORK / "twenty_k.csv"
        pd.read_csv(big, dtype=str, keep_default_na=False, nrows=min(rows, 20_000)).to_csv(slice_path, index=False)
        result["predict_base_20k"] = in_child(
            "predict-file", "--input", str(slice_path), "--output", str(WORK / "twenty_k.labeled.csv"),
            "--model", str(base), "--device", "cpu",
        )  # fmt: skip
    result["preprocess_streamed"] = in_child(
        "preprocess-file", "--input", str(big), "--output", str(WORK / "rows.processed.csv")
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reviews", type=int, default=2048, help="Reviews in the speed table.")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--million", action="store_true", help="Also the 1 M-row streaming runs.")
    parser.add_argument("--parts", default="speed,accuracy", help="Comma-separated: speed, accuracy, million.")
    parser.add_argument("--million-rows", type=int, default=1_000_000, help=argparse.SUPPRESS)
    parser.add_argument(
        "--accuracy-model",
        type=Path,
        default=RESULTS / "finetuned-random-init-mini-seed0",
        help="A model fine-tuned on NSMC for the int8 accuracy check [default: make bench-pretrain's].",
    )
    parser.add_argument("--corpus", type=Path, help="A CSV with a review column [default: ../shared NSMC].")
    parser.add_argument("--no-kiwi", action="store_true", help="Normalize without kiwipiepy (e.g. on a GPU box).")
    parser.add_argument("--child", choices=["variant", "predict-file", "preprocess-file"], help=argparse.SUPPRESS)
    parser.add_argument("--variant", help=argparse.SUPPRESS)
    parser.add_argument("--model", help=argparse.SUPPRESS)
    parser.add_argument("--texts", help=argparse.SUPPRESS)
    parser.add_argument("--input", help=argparse.SUPPRESS)
    parser.add_argument("--output", help=argparse.SUPPRESS)
    parser.add_argument("--chunk-rows", type=int, default=10_000, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.corpus:  # environment variables, so that the child processes see them too
        os.environ["RS_BENCH_CORPUS"] = str(args.corpus.resolve())
    if args.no_kiwi:
        os.environ["RS_BENCH_NO_KIWI"] = "1"
    if args.child:
        run = {"variant": child_variant, "predict-file": child_predict_file, "preprocess-file": child_preprocess_file}
        print(json.dumps(run[args.child](args)))
        return

    WORK.mkdir(parents=True, exist_ok=True)
    parts = set(args.parts.split(",")) | ({"million"} if args.million else set())
    saved = RESULTS / f"predict_speed_{args.device}.json"
    # Parts not run this time keep their last results, so one part can be rerun alone.
    result = json.loads(saved.read_text(encoding="utf-8")) if saved.exists() else {}
    result["device"] = args.device
    if "speed" in parts:
        result["speed"] = speed_table(args)
    if (
        "accuracy" in parts
        and args.device == "cpu"
        and NSMC.exists()
        and (args.accuracy_model / "rs_meta.json").exists()
    ):
        result["int8_accuracy"] = int8_accuracy(args)
    if "million" in parts:
        result["million"] = million_rows(args)
    saved.write_text(json.dumps(result, indent=2), encoding="utf-8")
    print_report(result)


def print_report(result: dict) -> None:
    if result.get("speed"):
        print_speed(result["device"], result["speed"])
    accuracy = result.get("int8_accuracy")
    if accuracy:
        fp32, int8 = accuracy["rs-fp32"], accuracy["rs-int8"]
        print(
            f"\n--quantize int8 on {accuracy['model']} ({accuracy['reviews']:,} labeled NSMC reviews): accuracy "
            f"{fp32['accuracy']:.4f} fp32 -> {int8['accuracy']:.4f} int8, same label on "
            f"{100 * accuracy['agreement']:.2f} %, {fp32['reviews_per_second']:.0f} -> "
            f"{int8['reviews_per_second']:.0f} reviews/s"
        )
    million = result.get("million")
    if million:
        print(f"\n{million['rows']:,} rows ({million['file_mb']} MB CSV), {million['model']} model:")
        for name in ("predict_streamed", "predict_base_20k", "preprocess_streamed"):
            if name in million:
                row = million[name]
                print(
                    f"- {name}: {row['rows']} rows in {row['seconds']:.0f} s ({row['rows'] / row['seconds']:.0f}/s), "
                    f"peak RSS {row['rss_mb']:.0f} MB"
                )
        print(f"- 100k rows streamed in 10k chunks == one chunk, byte for byte: {million['streamed_equals_whole']}")


def print_speed(device: str, speed: dict) -> None:
    peak = speed["matmul_gflops"]
    print(f"\n{speed['reviews']} reviews, {speed['mean_tokens']:.1f} tokens each on average, device {device}")
    if peak:
        print(f"fp32 matmul: {peak['default']} GFLOP/s torch default, {peak.get('onednn', '-')} oneDNN")
    print("\n| variant | reviews/s | tokens/s | % of fp32 peak | vs pipeline bs=1 | same label | peak RSS |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, row in speed["variants"].items():
        percent = f"{row['percent_of_peak']:.0f} %" if "percent_of_peak" in row else "–"
        print(
            f"| {name} | {row['reviews_per_second']:.1f} | {row['tokens_per_second']:.0f} | {percent} | "
            f"{row['speedup']:.1f}x | {100 * row['agreement']:.1f} % | {row['rss_mb']:.0f} MB |"
        )


if __name__ == "__main__":
    main()
