"""`hydralearn-plan`: what a config costs on its stated hardware, without that hardware.

    hydralearn-plan model=llama2_70b hardware=gpu_h100 hardware.hosts=64 data.seq_len=4096
    hydralearn-plan --compile +experiment=llama3_8b_tpu_v5p_yarn   # + XLA's figures, compiled for the TPU
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
                        help="also compile the training step for the profile's real target without "
                             "its hardware (TPU topology, GPU target config, or simulated CPU "
                             "devices) and print XLA's memory per device beside the estimate; "
                             "refuses a step that does not fit (exit 2)")
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
        config = load_resolved(args.overrides, where)
        plan = make_plan(config)
        elapsed = time.perf_counter() - started
    except ConfigError as e:
        exit_with(e)
    if not args.json:
        print(format_plan(plan, top=args.top))
        print(f"planned in {elapsed:.2f}s", flush=True)
    compiled = _compile(config) if args.compile else None
    if args.json:
        out = plan_json(plan, top=args.top)
        if compiled is not None:
            out["compiled"] = dataclasses.asdict(compiled) | {"peak_bytes": compiled.peak_bytes}
        print(json.dumps(out, indent=2))
    elif compiled is not None:
        print(format_compiled(compiled, plan))


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
        f"  FLOPs per token      {plan.flops_per_token:.3e} (training: 6N + 12*L*d_attn*(T+1)/2, causal)",
        f"  tokens per step      {plan.tokens_per_step:,}{_microbatches(plan)}",
        f"  step at 100% MFU     {_seconds(plan.step_seconds_at_peak)}",
        f"  memory per device    (estimate; remat={plan.remat})",
        *(f"    {name:<18} {_gib(value)}" for name, value in
          (("parameters", mem.params), ("optimizer state", mem.optimizer),
           ("gradients", mem.grads), ("activations", mem.activations),
           ("gathered weights", mem.gathered_weights))),
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


def _compile(config):
    from hydralearn.review.compiled import compiled_memory
    try:
        return compiled_memory(config)
    except ConfigError as e:
        exit_with(e)


def format_compiled(compiled, plan) -> str:
    estimate = plan.memory.total
    lines = [f"compiled for {compiled.target}, {compiled.device_kind}, in {compiled.compile_seconds:.1f}s",
             "  XLA memory per device"]
    lines += [f"    {name.removesuffix('_bytes'):<18} {_gib(getattr(compiled, name))}"
              for name in ("argument_bytes", "output_bytes", "temp_bytes", "alias_bytes")]
    lines += [f"    {'peak':<18} {_gib(compiled.peak_bytes)} of {_gib(plan.device_memory_bytes)}",
              f"    {'estimate':<18} {_gib(estimate)} (estimate / compiled peak = "
              f"{estimate / max(compiled.peak_bytes, 1):.2f})",
              f"  custom calls         {', '.join(compiled.custom_calls) or 'none'}"]
    return "\n".join(lines)


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
