"""Benchmark convx against PyTorch and TensorFlow-Keras, side by side.

Every measurement runs in a fresh worker process (``workers/<framework>_worker.py``),
frameworks alternate within each repeat, and the table shows medians over the
repeats and ratios convx time / reference time (> 1: convx is slower). See
benchmarks/README.md.

Usage::

    PYTHONPATH=src python benchmarks/run.py [--quick] [--cases train,conv] [--repeats N]
                                            [--tf-python /path/to/python] [--frameworks convx,torch,tf]
"""

import argparse
import datetime
import importlib.util
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
WORKERS = BENCH_DIR / "workers"
RESULTS = BENCH_DIR / "results"
DATA = REPO / "data" / "mnist"

sys.path.insert(0, str(WORKERS))
import _common  # noqa: E402

CASES = ("train", "infer", "conv", "gemm", "import", "memory", "threads", "contention", "onnx", "compression", "textcnn",
         "pipeline", "imagedir") + _common.MODEL_CASES + ("residual_layer",)
REFERENCES = ("torch", "tf", "numpy")
THREADS = 2
# environment variables that may pin OpenBLAS to a slower kernel; removed for the NumPy worker
OPENBLAS_OVERRIDES = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")

SETTINGS = {
    # train: timed steps after `warmup` steps; iters/max_s: calls and time cap per timed point
    # threads: chunks of steps per thread count, alternating in one process (see workers/_common.py)
    "full": {"compression_rounds": 15, "repeats": 3, "import_repeats": 5, "threads_repeats": 5, "threads_chunks": 10, "threads_steps": 10,
             "train_steps": 30, "train_warmup": 5, "infer_iters": 30, "infer_max_s": 3.0, "conv_iters": 10, "conv_max_s": 2.0, "gemm_iters": 10, "gemm_max_s": 3.0,
             "timeout_s": 600},
    "quick": {"compression_rounds": 3, "repeats": 1, "import_repeats": 1, "threads_repeats": 1, "threads_chunks": 2, "threads_steps": 2,
              "train_steps": 4, "train_warmup": 1, "infer_iters": 5, "infer_max_s": 0.5, "conv_iters": 3, "conv_max_s": 0.5, "gemm_iters": 3, "gemm_max_s": 0.5,
              "timeout_s": 180},
}
INFER_POINTS = [[1, "predict"], [1, "call"], [32, "predict"], [256, "predict"]]
MODEL_BATCH, MODEL_PREDICT_BATCH = 64, 128  # the residual and inception cases' training and predict batches
TEXT_BATCH, TEXT_PREDICT_BATCH = 50, 512  # the textcnn case's (Kim 2014's mini-batch of 50)
GEMM_SIZES = [1024, 2048]
ONNX_BATCHES = [1, 32, 256]  # the onnx case: convx predict vs ONNX Runtime on the exported seed model


@dataclass
class Job:
    """One worker invocation, repeated ``repeats`` times; ``results`` holds the successful outputs."""

    framework: str
    spec: dict
    contended: bool = False
    repeats: int = 1
    results: list = field(default_factory=list)
    errors: list = field(default_factory=list)

    @property
    def key(self):
        return self.framework, json.dumps(self.spec, sort_keys=True), self.contended

    def label(self):
        extra = {k: v for k, v in self.spec.items() if k not in ("case", "data", "iters", "max_seconds", "steps",
                                                                   "warmup", "layers", "points", "sizes")}
        text = f"{self.framework} {self.spec['case']} " + " ".join(f"{k}={v}" for k, v in sorted(extra.items()))
        return text + (" +spinner" if self.contended else "")


# ----- job definitions -----------------------------------------------------------------------------------------

def _train_spec(cfg, batch, threads=THREADS):
    return {"case": "train", "batch": batch, "threads": threads, "steps": cfg["train_steps"],
            "warmup": cfg["train_warmup"], "data": str(DATA)}


def _infer_spec(cfg, framework, points):
    if framework == "torch":  # torch has one inference API: the predict and call rows share a process
        points = [[b, "call"] for b in sorted({b for b, _ in points})]
    return {"case": "infer", "threads": THREADS, "points": points, "iters": cfg["infer_iters"],
            "max_seconds": cfg["infer_max_s"], "data": str(DATA)}


def _point_key(framework, batch, api):
    return f"{batch}/{'call' if framework == 'torch' else api}"


def slots_for(case, cfg, frameworks):
    """The measurement slots of a case: lists of (framework, spec, contended)."""
    models = [fw for fw in frameworks if fw in ("convx", "torch", "tf")]
    if case == "train":
        return [[(fw, _train_spec(cfg, b), False) for fw in models] for b in (32, 128)]
    if case == "memory":
        return [[(fw, _train_spec(cfg, 32), False) for fw in models]]
    if case == "threads":
        # convx and torch change their thread count in place: 1 and 2 threads alternate within each process, so
        # both see the same drifts of the machine. TensorFlow fixes its pools at start: a 1- and a 2-thread
        # process back to back, over twice the train case's steps, in slots of their own.
        alternating = {"case": "threads", "batch": 128, "threads": THREADS, "chunks": cfg["threads_chunks"],
                       "steps": cfg["threads_steps"], "data": str(DATA)}
        pairs = lambda t: dict(_train_spec(cfg, 128, t), steps=2 * cfg["train_steps"])  # noqa: E731
        slots = [[(fw, alternating, False) for fw in models if fw != "tf"]]
        return slots + [[("tf", pairs(t), False)] for t in (1, 2) if "tf" in models]
    if case == "contention":
        # the uncontended runs are the train b128 and infer cases' own (shared) processes
        return [[(fw, _train_spec(cfg, 128), False) for fw in models],
                [(fw, _infer_spec(cfg, fw, INFER_POINTS), False) for fw in models],
                [(fw, _train_spec(cfg, 128), True) for fw in models],
                [(fw, _infer_spec(cfg, fw, [[1, "call"]]), True) for fw in models]]
    if case == "infer":
        return [[(fw, _infer_spec(cfg, fw, INFER_POINTS), False) for fw in models]]
    if case == "conv":
        spec = {"case": "conv", "threads": THREADS, "layers": list(_common.CONV_LAYERS), "iters": cfg["conv_iters"],
                "max_seconds": cfg["conv_max_s"]}
        return [[(fw, spec, False) for fw in models]]
    if case == "gemm":
        spec = {"case": "gemm", "threads": THREADS, "sizes": GEMM_SIZES, "iters": cfg["gemm_iters"],
                "max_seconds": cfg["gemm_max_s"]}
        return [[(fw, spec, False) for fw in frameworks if fw in ("convx", "numpy", "torch")]]
    if case == "import":
        return [[(fw, {"case": "import"}, False) for fw in models]]
    if case == "pipeline":  # convx alone: fit fed by a convx.data pipeline vs by arrays, in one process
        return [[("convx", {"case": "pipeline", "batch": 32, "threads": THREADS, "data": str(DATA),
                            "steps": 4 * cfg["train_steps"], "chunks": cfg["threads_chunks"]}, False)]]
    if case == "imagedir":  # one pass over 10,000 PNGs: convx vs tf.keras.utils.image_dataset_from_directory
        import data_cases

        spec = {"case": "imagedir", "dir": str(data_cases.make_png_tree(data_cases.png_directory())),
                "size": data_cases.PNG_SIZE, "batch": 32, "threads": THREADS}
        return [[(fw, spec, False) for fw in models if fw in ("convx", "tf")]]
    if case == "onnx":
        spec = {"case": "onnx", "threads": THREADS, "batches": ONNX_BATCHES, "iters": cfg["infer_iters"],
                "max_seconds": cfg["infer_max_s"], "data": str(DATA)}
        return [[("convx", spec, False)]] if "convx" in frameworks else []
    if case == "compression":
        # one convx process holds every contender (convx float / int8 / filter-pruned, ONNX Runtime float / int8)
        spec = {"case": "compression", "threads": THREADS, "batch": 256, "train_samples": 6000,
                "calibration_samples": 1000, "rounds": cfg["compression_rounds"], "data": str(DATA)}
        return [[("convx", spec, False)]] if "convx" in frameworks else []
    if case == "residual_layer":
        # convx only: built-in vs custom-layer blocks alternate in one process
        spec = {"case": case, "batch": MODEL_BATCH, "predict_batch": MODEL_PREDICT_BATCH, "threads": THREADS,
                "steps": max(2, cfg["train_steps"] // 6),
                "warmup": cfg["train_warmup"], "chunks": 6 if cfg["repeats"] > 1 else 1}
        return [[("convx", spec, False)]]


    if case == "textcnn":
        spec = {"case": case, "batch": TEXT_BATCH, "predict_batch": TEXT_PREDICT_BATCH, "threads": THREADS,
                "steps": cfg["train_steps"], "warmup": cfg["train_warmup"], "iters": cfg["infer_iters"],
                "max_seconds": cfg["infer_max_s"]}
        return [[(fw, spec, False) for fw in models]]
    if case in _common.MODEL_CASES:
        # one process per framework times both training and predict
        spec = {"case": case, "batch": MODEL_BATCH, "predict_batch": MODEL_PREDICT_BATCH, "threads": THREADS,
                "steps": cfg["train_steps"], "warmup": cfg["train_warmup"], "iters": cfg["infer_iters"],
                "max_seconds": cfg["infer_max_s"]}
        return [[(fw, spec, False) for fw in models]]
    raise ValueError(case)


# ----- running workers -----------------------------------------------------------------------------------------

def worker_command(framework, interpreters, spec):
    script = WORKERS / f"{framework}_worker.py"
    return [interpreters[framework], str(script), json.dumps(spec)]


def worker_env(framework, threads):
    env = dict(os.environ)
    if framework in ("convx", "numpy"):
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO / "src"), env.get("PYTHONPATH")) if p)
    if framework == "numpy":
        for name in OPENBLAS_OVERRIDES:
            env.pop(name, None)
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "TF_NUM_INTRAOP_THREADS",
                 "TF_NUM_INTEROP_THREADS"):
        env[name] = str(threads)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return env


def start_spinner():
    """A pure-Python busy loop on one core, the 'another process' of the contention case."""
    return subprocess.Popen([sys.executable, "-c", "while True: pass"])


def run_worker(framework, interpreters, spec, contended, timeout):
    """Run one worker process; returns (result dict or None, error text or None, wall seconds)."""
    cmd = worker_command(framework, interpreters, spec)
    env = worker_env(framework, spec.get("threads", THREADS))
    spinner = start_spinner() if contended else None
    if spinner is not None:
        time.sleep(0.2)  # let the spinner reach its loop before timing starts
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout, cwd=REPO)
    except subprocess.TimeoutExpired:
        return None, f"timed out after {timeout} s", time.perf_counter() - t0
    finally:
        if spinner is not None:
            spinner.terminate()
            spinner.wait()
    wall = time.perf_counter() - t0
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(_common.RESULT_PREFIX)]
    if proc.returncode != 0 or not lines:
        tail = "\n".join(proc.stderr.strip().splitlines()[-8:])
        return None, f"exit code {proc.returncode}: {tail}", wall
    return json.loads(lines[-1][len(_common.RESULT_PREFIX):]), None, wall


def collect_jobs(cases, cfg, frameworks, repeats):
    """Unique jobs and, per case, its slots as lists of jobs (shared where specs coincide)."""
    jobs, case_slots = {}, {}
    for case in cases:
        case_slots[case] = []
        for slot in slots_for(case, cfg, frameworks):
            row = {}
            for fw, spec, contended in slot:
                job = Job(fw, spec, contended)
                job = jobs.setdefault(job.key, job)
                job.repeats = max(job.repeats, cfg.get(f"{case}_repeats", repeats))
                row[fw] = job
            case_slots[case].append(row)
    return list(jobs.values()), case_slots


def run_jobs(jobs, case_slots, frameworks, interpreters, timeout):
    """Run every job ``job.repeats`` times, slot by slot, rotating the framework order each repeat."""
    ordered = [row for slots in case_slots.values() for row in slots]
    total = sum(job.repeats for job in jobs)
    done, raw = 0, []
    for rep in range(max(job.repeats for job in jobs)):
        order = frameworks[rep % len(frameworks):] + frameworks[:rep % len(frameworks)]
        ran = set()
        for row in ordered:
            for fw in order:
                job = row.get(fw)
                if job is None or job.key in ran or rep >= job.repeats:
                    continue
                ran.add(job.key)
                done += 1
                result, error, wall = run_worker(fw, interpreters, job.spec, job.contended, timeout)
                status = f"{wall:6.1f} s" if error is None else f"FAILED ({error.splitlines()[0]})"
                print(f"[{done:3d}/{total}] {job.label():<45s} {status}", flush=True)
                if error is None:
                    job.results.append(dict(result, repeat=rep))
                else:
                    job.errors.append(error)
                    print("        " + error.replace("\n", "\n        "), file=sys.stderr)
                raw.append({"framework": fw, "spec": job.spec, "contended": job.contended, "repeat": rep,
                            "wall_s": wall, "result": result, "error": error})
    return raw


# ----- reducing results to rows --------------------------------------------------------------------------------

def _median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def _job_median(job, getter):
    if job is None:
        return None
    return _median([getter(result) for result in job.results])


def _row(case, metric, unit, kind, values):
    """kind: 'time' (ratio convx/ref), 'rate' (ratio ref/convx, i.e. a time ratio), 'mem', or 'factor' (none)."""
    return {"case": case, "metric": metric, "unit": unit, "kind": kind, "values": values}


def _per_fw(row_jobs, getter):
    return {fw: _job_median(job, getter) for fw, job in row_jobs.items()}


def _ms_per_step(result):
    return 1e3 * result["s_per_step"]


def rows_for(case, slots):
    rows = []
    if case == "train":
        for row_jobs, batch in zip(slots, (32, 128)):
            rows.append(_row(f"train b{batch}", "time per step", "ms", "time", _per_fw(row_jobs, _ms_per_step)))
            rows.append(_row(f"train b{batch}", "throughput", "samples/s", "rate",
                             _per_fw(row_jobs, lambda r: r["samples_per_s"])))
    elif case == "memory":
        rows.append(_row("memory train b32", "peak RSS", "MiB", "mem", _per_fw(slots[0], lambda r: r["rss_peak_mb"])))
        rows.append(_row("memory train b32", "peak - after imports", "MiB", "mem",
                         _per_fw(slots[0], lambda r: r["rss_peak_mb"] - r["rss_baseline_mb"])))
    elif case == "threads":
        one, two = ({fw: _job_median(job, lambda r, t=t: r["ms_per_step"][t]) for fw, job in slots[0].items()}
                    for t in ("1", "2"))
        speedup = {fw: _job_median(job, lambda r: r["speedup"]) for fw, job in slots[0].items()}
        if len(slots) == 3:  # TensorFlow's process pairs, paired by repeat
            ones = {r["repeat"]: r["s_per_step"] for r in slots[1]["tf"].results}
            twos = {r["repeat"]: r["s_per_step"] for r in slots[2]["tf"].results}
            one["tf"], two["tf"] = _job_median(slots[1]["tf"], _ms_per_step), _job_median(slots[2]["tf"], _ms_per_step)
            speedup["tf"] = _median([ones[rep] / twos[rep] for rep in ones if rep in twos])
        rows.append(_row("threads train b128", "1 thread", "ms/step", "time", one))
        rows.append(_row("threads train b128", "2 threads", "ms/step", "time", two))
        rows.append(_row("threads train b128", "speed-up 1->2", "x", "factor", speedup))
    elif case == "contention":
        calm_train, calm_infer, busy_train, busy_infer = slots
        pairs = (("train b128", calm_train, busy_train, _ms_per_step, "ms/step"),
                 ("infer b1 call", calm_infer, busy_infer, lambda r: 1e3 * r["points"]["1/call"]["median_s"], "ms"))
        for name, calm, busy, getter, unit in pairs:
            calm_v, busy_v = _per_fw(calm, getter), _per_fw(busy, getter)
            rows.append(_row(f"contention {name}", "uncontended", unit, "time", calm_v))
            rows.append(_row(f"contention {name}", "with spinner", unit, "time", busy_v))
            rows.append(_row(f"contention {name}", "slow-down", "x", "factor", _ratio_values(busy_v, calm_v)))
    elif case == "infer":
        for batch, api in INFER_POINTS:
            values = {fw: _job_median(job, lambda r, k=_point_key(fw, batch, api): 1e3 * r["points"][k]["median_s"])
                      for fw, job in slots[0].items()}
            rows.append(_row(f"infer b{batch}", f"{api} per batch", "ms", "time", values))
    elif case == "conv":
        for layer in _common.CONV_LAYERS:
            flops = dict(zip(("fwd", "bwd"), _common.conv_flops(layer)))
            for part in ("fwd", "bwd"):
                rows.append(_row(f"conv {layer}", f"{part} b32", "GFLOP/s", "rate", _per_fw(
                    slots[0], lambda r, p=part: flops[p] / r["layers"][layer][p]["median_s"] / 1e9)))
    elif case == "gemm":
        for n in GEMM_SIZES:
            rows.append(_row(f"sgemm {n}^3", "c = a @ b", "GFLOP/s", "rate", _per_fw(
                slots[0], lambda r, n=n: 2.0 * n ** 3 / r["sizes"][str(n)]["median_s"] / 1e9)))
    elif case == "import":
        values = _per_fw(slots[0], lambda r: r["extra_s"])
        # import numpy itself, as the baseline 'import convx' is measured over
        values["numpy"] = _job_median(slots[0].get("convx"), lambda r: r["numpy_s"])
        rows.append(_row("import (over numpy)", "time", "s", "time", values))
    elif case == "pipeline":
        for name in ("arrays", "pipeline"):
            rows.append(_row("fit seed b32 fed by", name, "ms/step", "factor",
                             _per_fw(slots[0], lambda r, k=name: r["ms_per_step"][k])))
        rows.append(_row("fit seed b32", "pipeline / arrays", "x", "factor", _per_fw(slots[0], lambda r: r["ratio"])))
    elif case == "imagedir":
        rows.append(_row("read 10,000 PNGs 32x32", "image_dataset_from_directory", "s", "time",
                         _per_fw(slots[0], lambda r: r["seconds"])))
    elif case == "onnx" and slots:
        # one convx process times both engines; every value sits in the convx column, the metric says which
        job = slots[0]["convx"]
        for batch in ONNX_BATCHES:
            get = lambda key, b=batch: _job_median(job, lambda r: 1e3 * r["points"][str(b)][key])  # noqa: E731
            for key, metric in (("predict", "convx predict"), ("predict_on_batch", "convx predict_on_batch"),
                                ("ort", "onnxruntime run")):
                rows.append(_row(f"onnx seed b{batch}", metric, "ms", "factor", {"convx": get(key)}))
            rows.append(_row(f"onnx seed b{batch}", "predict / onnxruntime", "x", "factor",
                             {"convx": get("predict") / get("ort") if get("ort") else None}))
    elif case == "compression" and slots:
        times = lambda name: _job_median(slots[0]["convx"], lambda r: 1e3 * r["median_s"][name])  # noqa: E731
        for name, label in (("float", "convx float32"), ("int8", "convx int8"), ("filters50", "convx 50% filters"),
                            ("ort_float", "ONNX Runtime float32"), ("ort_int8", "ONNX Runtime int8 (static QDQ)")):
            rows.append(_row("compression predict b256", label, "ms", "factor", {"convx": times(name)}))
        for num, den, label in (("int8", "float", "int8 / float"), ("int8", "ort_int8", "int8 / ORT int8"),
                                ("float", "filters50", "float / 50% filters (speed-up)")):
            a, b = times(num), times(den)
            rows.append(_row("compression predict b256", label, "x", "factor", {"convx": a / b if a and b else None}))
    elif case == "residual_layer":
        name = f"residual train b{MODEL_BATCH}"
        for key, label in (("builtin", "built-in layers"), ("custom", "custom block layers")):
            rows.append(_row(name, f"{label}", "ms/step", "factor",
                             _per_fw(slots[0], lambda r, k=key: 1e3 * r[k]["s_per_step"])))
        rows.append(_row(name, "custom / built-in", "ratio", "factor", _per_fw(slots[0], lambda r: r["ratio"])))
        name = f"residual predict b{MODEL_PREDICT_BATCH}"
        for key, label in (("builtin", "built-in layers"), ("custom", "custom block layers")):
            rows.append(_row(name, f"{label}", "ms", "factor",
                             _per_fw(slots[0], lambda r, k=key: 1e3 * r[k]["predict_s"])))
        rows.append(_row(name, "custom / built-in", "ratio", "factor",
                         _per_fw(slots[0], lambda r: r["predict_ratio"])))


    elif case == "textcnn":
        train = f"textcnn train b{TEXT_BATCH}"
        rows.append(_row(train, "time per step", "ms", "time", _per_fw(slots[0], lambda r: _ms_per_step(r["train"]))))
        rows.append(_row(f"textcnn predict b{TEXT_PREDICT_BATCH}", "per batch", "ms", "time",
                         _per_fw(slots[0], lambda r: 1e3 * r["predict"]["median_s"])))
        rows.append(_row("textcnn", "parameters", "count", "factor", _per_fw(slots[0], lambda r: r["params"])))
    elif case in _common.MODEL_CASES:
        train = f"{case} train b{MODEL_BATCH}"
        rows.append(_row(train, "time per step", "ms", "time", _per_fw(slots[0], lambda r: _ms_per_step(r["train"]))))
        rows.append(_row(train, "throughput", "samples/s", "rate",
                         _per_fw(slots[0], lambda r: r["train"]["samples_per_s"])))
        rows.append(_row(f"{case} predict b{MODEL_PREDICT_BATCH}", "per batch", "ms", "time",
                         _per_fw(slots[0], lambda r: 1e3 * r["predict"]["median_s"])))
        # the same network everywhere: the counts should agree
        rows.append(_row(case, "parameters", "count", "factor", _per_fw(slots[0], lambda r: r["params"])))
    return rows


def _ratio_values(num, den):
    return {fw: (num[fw] / den[fw] if num.get(fw) and den.get(fw) else None) for fw in num}


def add_ratios(rows):
    for row in rows:
        convx = row["values"].get("convx")
        ratios = {}
        for ref in REFERENCES:
            value = row["values"].get(ref)
            if row["kind"] == "factor" or not convx or not value:
                continue
            ratios[ref] = value / convx if row["kind"] == "rate" else convx / value
        row["ratios"] = ratios


# ----- output --------------------------------------------------------------------------------------------------

def _fmt(value):
    if value is None:
        return "-"
    if abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.3g}"


def format_table(rows, frameworks):
    columns = ["convx"] + [fw for fw in REFERENCES if fw in frameworks]
    ratio_columns = [fw for fw in REFERENCES if fw in frameworks]
    header = ["case", "metric", "unit"] + columns + [f"convx/{fw}" for fw in ratio_columns]
    body = [[row["case"], row["metric"], row["unit"]]
            + [_fmt(row["values"].get(fw)) for fw in columns]
            + [_fmt(row["ratios"].get(fw)) for fw in ratio_columns] for row in rows]
    widths = [max(len(line[i]) for line in [header] + body) for i in range(len(header))]
    lines = []
    for line in [header] + body:
        cells = [cell.ljust(w) if i < 3 else cell.rjust(w) for i, (cell, w) in enumerate(zip(line, widths))]
        lines.append("  ".join(cells))
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)


def machine_info(frameworks, interpreters):
    info = {"platform": platform.platform(), "python": sys.version.split()[0], "executable": sys.executable,
            "cpu_count": os.cpu_count(), "interpreters": interpreters,
            "openblas_env": {name: os.environ.get(name) for name in OPENBLAS_OVERRIDES},
            "loadavg_start": os.getloadavg()}
    if hasattr(os, "sched_getaffinity"):
        info["cpus_available"] = len(os.sched_getaffinity(0))
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
    except OSError:
        cpuinfo = ""
    for line in cpuinfo.splitlines():
        if line.startswith("model name") and "cpu_model" not in info:
            info["cpu_model"] = line.split(":", 1)[1].strip()
        if line.startswith("flags") and "cpu_flags" not in info:
            flags = set(line.split(":", 1)[1].split())
            info["cpu_flags"] = {flag: flag in flags for flag in ("avx2", "fma", "avx512f")}
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO,
                               capture_output=True, text=True).stdout.strip()
        info["git"] = {"commit": commit, "dirty": bool(dirty)}
    except OSError:
        pass
    convx_info, error, _ = run_worker("convx", interpreters, {"case": "info"}, False, 120)
    if error is not None:
        raise SystemExit(f"convx is not importable from {REPO / 'src'} (build it first):\n{error}")
    info["convx_config"] = convx_info["config"]
    info["frameworks"] = frameworks
    return info


def _versions(raw):
    versions = {}
    for record in raw:
        if record["result"]:
            versions.update(record["result"].get("versions", {}))
    return versions


def _blas(raw):
    for record in raw:
        if record["framework"] == "numpy" and record["result"]:
            return {"blas": record["result"]["blas"], "worker_env": record["result"]["env"]}
    return None


# ----- command line --------------------------------------------------------------------------------------------

def _can_import(python, module):
    code = f"import importlib.util, sys; sys.exit(importlib.util.find_spec({module!r}) is None)"
    try:
        return subprocess.run([python, "-c", code], capture_output=True, timeout=60).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def detect_frameworks(args):
    interpreters = {"convx": sys.executable, "numpy": sys.executable, "torch": sys.executable}
    frameworks = ["convx"]
    if importlib.util.find_spec("torch") is not None:
        frameworks.append("torch")
    else:
        print("PyTorch not installed: skipping it", file=sys.stderr)
    tf_python = args.tf_python or sys.executable
    if _can_import(tf_python, "tensorflow"):
        frameworks.append("tf")
        interpreters["tf"] = tf_python
    else:
        print(f"TensorFlow not importable by {tf_python}: skipping it (see --tf-python)", file=sys.stderr)
    frameworks.append("numpy")
    if args.frameworks:
        wanted = set(args.frameworks.split(",")) | {"convx"}
        frameworks = [fw for fw in frameworks if fw in wanted]
    return frameworks, interpreters


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="few steps and iterations, one repeat: a smoke test")
    parser.add_argument("--cases", default=",".join(CASES), help=f"comma-separated subset of {','.join(CASES)}")
    parser.add_argument("--repeats", type=int, help="worker processes per measurement (default 3, quick 1)")
    parser.add_argument("--tf-python", help="interpreter with TensorFlow (default: this one, if it has TensorFlow)")
    parser.add_argument("--frameworks", help="comma-separated subset of torch,tf,numpy to compare (convx always runs)")
    parser.add_argument("--output-dir", type=Path, default=RESULTS, help="where <timestamp>.json and latest.json go")
    args = parser.parse_args(argv)
    cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    unknown = sorted(set(cases) - set(CASES))
    if unknown:
        parser.error(f"unknown case(s) {unknown}; choose from {list(CASES)}")
    if args.repeats is not None and args.repeats < 1:
        parser.error("--repeats must be at least 1")
    args.cases = cases
    return args


def main(argv=None):
    args = parse_args(argv)
    mode = "quick" if args.quick else "full"
    cfg = dict(SETTINGS[mode])
    repeats = args.repeats or cfg["repeats"]
    for case in ("import", "threads"):  # cases whose cells need more processes than the others
        cfg[f"{case}_repeats"] = max(cfg[f"{case}_repeats"], repeats)
    frameworks, interpreters = detect_frameworks(args)
    started = time.perf_counter()
    info = machine_info(frameworks, interpreters)
    print(f"convx benchmarks ({mode}): {info.get('cpu_model')}, {info.get('cpus_available', info['cpu_count'])} CPUs, "
          f"frameworks {', '.join(frameworks)}; {THREADS} threads each", flush=True)
    jobs, case_slots = collect_jobs(args.cases, cfg, frameworks, repeats)
    raw = run_jobs(jobs, case_slots, frameworks, interpreters, cfg["timeout_s"])
    rows = [row for case, slots in case_slots.items() for row in rows_for(case, slots)]
    add_ratios(rows)
    info["loadavg_end"] = os.getloadavg()
    print(f"\nmedians over {repeats} worker process(es) per cell ({cfg['import_repeats']} for import, "
          f"{cfg['threads_repeats']} for threads); ratios are "
          f"convx time / reference time (> 1: convx slower); load average {info['loadavg_start'][0]:.2f} at start, "
          f"{info['loadavg_end'][0]:.2f} at end")
    info["versions"] = _versions(raw)
    info["numpy_blas"] = _blas(raw)
    table = format_table(rows, frameworks)
    print(table)
    failures = sum(len(job.errors) for job in jobs)
    report = {"created": datetime.datetime.now().isoformat(timespec="seconds"), "mode": mode, "repeats": repeats,
              "cases": args.cases, "settings": cfg, "machine": info, "rows": rows, "table": table,
              "failures": failures, "total_s": time.perf_counter() - started, "raw": raw}
    args.output_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    text = json.dumps(report, indent=1)
    (args.output_dir / f"{stamp}.json").write_text(text)
    (args.output_dir / "latest.json").write_text(text)
    print(f"\n{failures} failed worker run(s); {report['total_s']:.0f} s; wrote {args.output_dir / (stamp + '.json')}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
