"""Per-device parameter bytes of a model on N devices under each sharding preset.

From the abstract build only (nnx.eval_shape: no parameter is allocated), on N simulated
CPU devices, so it runs anywhere in about a second per preset:

    .venv/bin/python scripts/param_bytes.py                      # llama2_7b, 8 devices
    .venv/bin/python scripts/param_bytes.py model=llama2_70b --devices 64
"""

import argparse
import os
import sys

# (sharding preset, mesh preset, mesh overrides for N devices)
LAYOUTS = [
    ("dp", "dp", []),
    ("fsdp", "fsdp", []),
    ("fsdp_tp", "fsdp_tp", ["mesh.axes.tensor=2"]),
    ("ep", "ep", ["mesh.axes.expert=2"]),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=8)
    parser.add_argument("overrides", nargs="*", default=["model=llama2_7b"])
    args = parser.parse_args()
    os.environ["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={args.devices}"
    os.environ["JAX_PLATFORMS"] = "cpu"
    import jax

    from hydralearn.config import compose as compose_config

    from hydralearn.compose.resolve import resolve
    from hydralearn.compose.build import abstract_params, count_params, param_shardings
    from hydralearn.compose.mesh import make_mesh
    from hydralearn.compose.sharding import bytes_per_device
    from hydralearn.errors import ConfigError

    rows = []
    for sharding, mesh, extra in LAYOUTS:
        overrides = [*args.overrides, f"sharding={sharding}", f"mesh={mesh}", *extra,
                     f"data.batch_size={args.devices}"]
        try:
            config = resolve(compose_config.load(overrides), device_count=args.devices)
        except ConfigError as e:
            print(f"{sharding}: {e}", file=sys.stderr)
            continue
        _, params = abstract_params(config)
        shardings = param_shardings(params, config, make_mesh(config.mesh.axes, jax.devices()))
        per_device = bytes_per_device(params, shardings)
        total = sum(v.size * v.dtype.itemsize for v in jax.tree.leaves(params))
        shape = " x ".join(f"{k}={v}" for k, v in config.mesh.axes.items() if v > 1)
        rows.append((sharding, shape, count_params(params), total, per_device))
    print(f"{' '.join(args.overrides)} on {args.devices} devices (parameters only; Adam adds 2x)")
    print("| sharding | mesh | parameters | total GiB | per-device GiB | per-device bytes |")
    print("|---|---|---:|---:|---:|---:|")
    for sharding, shape, count, total, per_device in rows:
        print(f"| {sharding} | {shape} | {count:,} | {total / 2**30:.2f} | {per_device / 2**30:.2f} "
              f"| {per_device:,} |")


if __name__ == "__main__":
    main()
