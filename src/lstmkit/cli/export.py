"""``lstmkit export RUN``: a finished run's network as ONNX graphs, checked against lstmkit.

    lstmkit export runs/air                       # -> runs/air-onnx/
    lstmkit export runs/clf --output-dir serving/clf --overwrite

The folder holds the graphs, the run's tokenizer or scaler files and export.json
(what every input and output means, and each graph's check in onnxruntime).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from lstmkit.cli.options import add_threads_option


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "export", help="export a trained model to ONNX for serving without lstmkit",
        description="Export the network of a finished forecast, classify, lm, translate or "
                    "finance run to ONNX. Each graph is checked in onnxruntime against "
                    "lstmkit's own output at several batch sizes and sequence lengths; "
                    "export.json says what its inputs and outputs mean.")
    parser.add_argument("run_dir", type=Path, metavar="RUN",
                        help="run directory of a trained model")
    parser.add_argument("--format", default="onnx", choices=["onnx"], help="(default onnx)")
    parser.add_argument("--output-dir", type=Path,
                        help="the folder to write (default: RUN-onnx beside the run)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an existing --output-dir (the old one stays until the "
                             "new export is complete)")
    add_threads_option(parser)
    parser.set_defaults(handler=export_command)


def export_command(args: argparse.Namespace) -> int:
    from lstmkit.serve.export import export_run  # torch and onnx only when exporting

    result = export_run(args.run_dir, args.output_dir, format=args.format,
                        overwrite=args.overwrite)
    for graph in result.graphs:
        inputs = ", ".join(p["name"] for p in graph.description["inputs"])
        outputs = ", ".join(p["name"] for p in graph.description["outputs"])
        print(f"{graph.file.name}: ({inputs}) -> ({outputs})")
        for check in graph.checks:
            sizes = ", ".join(f"{name} {size}" for name, size in check.sizes.items())
            print(f"  checked at {sizes}: largest difference from lstmkit "
                  f"{check.max_abs_difference:.1e}")
    copied = f" with {', '.join(result.files_copied)}" if result.files_copied else ""
    print(f"wrote the {result.task} model (ONNX opset {result.opset}){copied} and export.json "
          f"to {result.directory}")
    return 0
