"""`hydralearn-generate`: text from a trained model, with a KV cache.

    hydralearn-generate runs/my_run --prompt "def fib(n):"        # streams to the console
    hydralearn-generate runs/my_run@500 --prompts-file prompts.txt # one prompt per line, batched
    hydralearn-generate /ckpt/Llama-3.2-1B --prompt "Once" --temperature 0.7 --top-p 0.9 --seed 1
    hydralearn-generate runs/my_sft --chat --prompt "Hello"     # the run's chat template
"""

import sys
import time
from pathlib import Path

from hydralearn.cli.args import ArgumentParser
from hydralearn.cli.errors import exit_with
from hydralearn.cli.target import load
from hydralearn.compose import cache
from hydralearn.errors import ConfigError
from hydralearn.runtime.sampling import Sampling


def parse(argv: list[str]):
    parser = ArgumentParser(prog="hydralearn-generate", description="Generate text from a run's "
                            "checkpoint (<run dir>[@step]) or a Hugging Face directory.")
    parser.add_argument("target", help="run directory, optionally @step (default: the newest "
                        "checkpoint), or a Hugging Face directory (config.json + *.safetensors)")
    prompts = parser.add_mutually_exclusive_group(required=True)
    prompts.add_argument("--prompt", help="one prompt; its completion streams to the console")
    prompts.add_argument("--prompts-file", type=Path, help="one prompt per line, generated as a batch")
    parser.add_argument("--max-new-tokens", type=int, default=128)
    parser.add_argument("--temperature", type=float, default=0.0, help="0 (default): greedy")
    parser.add_argument("--top-k", type=int, default=0, help="sample among the k most likely (0: off)")
    parser.add_argument("--top-p", type=float, default=1.0, help="nucleus sampling (1: off)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--stop", action="append", default=[], metavar="TEXT",
                        help="end a completion before this text (repeatable); eos always ends it")
    parser.add_argument("--chat", action="store_true",
                        help="each prompt is a user's message, rendered with the run's chat template "
                        "(data=chat); generation stops at the template's end-of-turn token")
    parser.add_argument("--system", metavar="TEXT", help="with --chat: a system turn before each prompt")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse(sys.argv[1:] if argv is None else argv)
    try:
        sampling = Sampling(temperature=args.temperature, top_k=args.top_k, top_p=args.top_p,
                            seed=args.seed)
        errors = sampling.errors() + ([] if args.max_new_tokens > 0 else
                                      [f"--max-new-tokens={args.max_new_tokens} must be positive"])
        if errors:
            raise ConfigError(errors)
        prompts = [args.prompt] if args.prompt is not None else _read_prompts(args.prompts_file)
        _generate(args, prompts, sampling)
    except ConfigError as e:
        exit_with(e)


def _read_prompts(path: Path) -> list[str]:
    if not path.is_file():
        raise ConfigError([f"--prompts-file {path}: no such file"])
    prompts = [line for line in path.read_text().splitlines() if line.strip()]
    if not prompts:
        raise ConfigError([f"--prompts-file {path}: no prompts (one per line)"])
    return prompts


def _generate(args, prompts: list[str], sampling: Sampling) -> None:
    model = load(args.target)  # a missing directory is reported before jax is imported
    cache.use(model.config.trainer.compile_cache)
    from hydralearn.runtime.generate import Generator, complete

    codec, stop = model.codec, tuple(args.stop)
    if args.chat:
        from hydralearn.runtime.text import chat_codec

        codec = chat_codec(model.config, system=args.system)
        stop += codec.stop
    if any(not codec.encode(p) for p in prompts):
        raise ConfigError(["a prompt encodes to no tokens; give some text"])
    generator = Generator(model.config, model.params, mesh=model.mesh)
    stream = len(prompts) == 1
    if stream and not args.chat:  # a chat prints the answer only
        print(prompts[0], end="", flush=True)
    started = time.perf_counter()
    texts = complete(generator, codec, prompts, max_new_tokens=args.max_new_tokens,
                     sampling=sampling, stop=stop,
                     on_text=(lambda text: print(text, end="", flush=True)) if stream else None)
    elapsed = time.perf_counter() - started
    if stream:
        print()
    else:
        for i, (prompt, text) in enumerate(zip(prompts, texts)):
            print(f"--- {i + 1} ---\n{prompt}{text}")
    print(f"[{len(prompts)} prompt(s), {elapsed:.2f}s including compilation]", file=sys.stderr)


if __name__ == "__main__":
    main()
