"""`hydralearn-plan`: what a config costs on its stated hardware, without that hardware.

    hydralearn-plan model=llama2_70b hardware=gpu_h100 hardware.hosts=64 data.seq_len=4096
    hydralearn-plan --compile model/ffn=gelu hardware.devices_per_host=8   # + XLA's own memory figures
    hydralearn-plan --explain model.rope_theta model=llama3_8b            # which file set it
"""

import argparse
import dataclasses
import json
import sys
import time

from hydralearn.cli import hydra_args
from hydralearn.cli.errors import exit_with
from hydralearn.errors import ConfigError

GIB = 2**30


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="hydralearn-plan", description="Plan a run: parameters, FLOPs, mesh and memory per "
        "device for the stated hardware (hardware.hosts x hardware.devices_per_host devices).")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides, as for hydralearn-train")
    parser.add_argument("--compile", action="store_true",
                        help="also compile the step for the simulated device count and print "
                             "XLA's memory analysis (slow for large models)")
    parser.add_argument("--explain", metavar="KEY", help="say which file, defaults entry or "
                        "override set KEY, instead of planning")
    parser.add_argument("--top", type=int, default=8, help="largest tensors to list (default 8)")
    parser.add_argument("--json", action="store_true", help="print the plan as JSON")
    hydra_args.add_location_flags(parser)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse(sys.argv[1:] if argv is None else argv)
    where = hydra_args.location(args)
    try:
        if args.explain:
            from hydralearn.review.explain import explain, format_explanation
            print(format_explanation(explain(args.explain, args.overrides, where)))
            return
        started = time.perf_counter()
        from hydralearn.review.plan import load_resolved, make_plan
        plan = make_plan(load_resolved(args.overrides, where))
        elapsed = time.perf_counter() - started
    except ConfigError as e:
        exit_with(e)
    if args.json:
        print(json.dumps(plan_json(plan, top=args.top), indent=2))
    else:
        print(format_plan(plan, top=args.top))
        print(f"planned in {elapsed:.2f}s")
    if args.compile:
        _print_compiled(args.overrides, plan, where)


def plan_json(plan, *, top: int) -> dict:
    out = dataclasses.asdict(plan)
    out["tensors"] = out["tensors"][:top]
    out["memory"] = plan.memory.as_dict()
    return out


def format_plan(plan, *, top: int = 8) -> str:
    mem = plan.memory
    mesh = " ".join(f"{k}={v}" for k, v in plan.mesh.items())
    per_host = plan.device_count // plan.hosts
    lines = [
        f"plan: {plan.name} on {plan.hosts} x {per_host} {plan.hardware} ({plan.device_count} devices)",
        f"  mesh                 {mesh}",
        f"  attention kernel     {plan.kernel}",
        f"  compute dtype        {plan.compute_dtype}",
        f"  parameters           {_count(plan.total_params)} total, {_count(plan.active_params)} active per token"
        + (f", {_count(plan.trainable_params)} trainable" if plan.trainable_params != plan.total_params else ""),
        f"  FLOPs per token      {plan.flops_per_token:.3e} (training: 6N + 12*L*d_attn*T)",
        f"  tokens per step      {plan.tokens_per_step:,}{_microbatches(plan)}",
        f"  step at 100% MFU     {_seconds(plan.step_seconds_at_peak)}",
        f"  memory per device    (estimate; remat={plan.remat})",
        *(f"    {name:<18} {_gib(value)}" for name, value in
          (("parameters", mem.params), ("optimizer state", mem.optimizer),
           ("gradients", mem.grads), ("activations", mem.activations))),
        f"    {'total':<18} {_gib(mem.total)} of {_gib(plan.device_memory_bytes)}",
    ]
    if top > 0:
        lines += ["  largest tensors per device", *_tensor_lines(plan.tensors[:top])]
    lines += [f"  warning: {w}" for w in plan.warnings]
    return "\n".join(lines)


def _tensor_lines(rows) -> list[str]:
    table = [("path", "shape", "dtype", "logical axes", "spec", "per device")]
    table += [(r.path, "x".join(map(str, r.shape)), r.dtype, ",".join(a or "-" for a in r.logical_axes),
               r.spec, _gib(r.bytes_per_device)) for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    return ["    " + "  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in table]


def _print_compiled(overrides: list[str], plan, where) -> None:
    from hydralearn.review.compiled import CompileError, compiled_memory
    started = time.perf_counter()
    try:
        stats = compiled_memory(overrides, device_count=plan.device_count, location=where)
    except CompileError as e:
        exit_with(ConfigError([str(e)]))
    print(f"XLA memory analysis per device ({plan.device_count} simulated CPU devices, "
          f"compiled in {time.perf_counter() - started:.1f}s)")
    for name in ("argument_bytes", "output_bytes", "temp_bytes", "alias_bytes"):
        print(f"    {name.removesuffix('_bytes'):<18} {_gib(getattr(stats, name))}")
    print(f"    {'peak':<18} {_gib(stats.peak_bytes)} (estimate above: {_gib(plan.memory.total)})")


def _microbatches(plan) -> str:
    return f" in {plan.grad_accum} microbatches (trainer.grad_accum)" if plan.grad_accum > 1 else ""


def _count(n: int) -> str:
    for unit, scale in (("T", 1e12), ("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= scale:
            return f"{n / scale:.2f}{unit} ({n:,})"
    return f"{n:,}"


def _gib(n: float) -> str:
    return f"{n / GIB:.2f} GiB" if n >= GIB / 100 else f"{n / 2**20:.2f} MiB"


def _seconds(s: float) -> str:
    return f"{s:.3f} s" if s >= 0.1 else f"{s * 1e3:.2f} ms"


if __name__ == "__main__":
    main()
